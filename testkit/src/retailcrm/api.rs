//! HTTP side of the fake: one entry point that routes API v5 and MG paths and applies the
//! cross-cutting rules (faults, latency, unknown account, auth, plan, rate limit, scopes).

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::FakeRetailCrm;
use super::mg;
use super::state::{FieldErrors, State, digits, int_field, render_order};
use super::{ApiKey, SiteAccess};

/// Prefix of the MG transport API on the fake.
pub(crate) const MG_PREFIX: &str = "/mg/api/transport/v1";

/// An answer of the fake, turned into an `HttpResponse` at the very end (keeps the `Err` side
/// of handler results small).
pub(crate) struct Reply {
    status: u16,
    body: ReplyBody,
}

enum ReplyBody {
    Json(Value),
    Html(String),
}

impl Reply {
    fn into_response(self) -> HttpResponse {
        let mut builder = HttpResponse::build(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
        match self.body {
            ReplyBody::Json(value) => builder
                .content_type("application/json")
                .body(value.to_string()),
            ReplyBody::Html(page) => builder.content_type("text/html; charset=utf-8").body(page),
        }
    }
}

pub(crate) fn json_response(status: u16, body: &Value) -> Reply {
    Reply {
        status,
        body: ReplyBody::Json(body.clone()),
    }
}

/// RetailCRM's error envelope.
fn fail(status: u16, message: &str) -> Reply {
    json_response(status, &json!({"success": false, "errorMsg": message}))
}

fn html(status: u16, title: &str) -> Reply {
    Reply {
        status,
        body: ReplyBody::Html(format!(
            "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\
             <body><h1>{title}</h1><hr><center>nginx</center></body></html>\n"
        )),
    }
}

pub(crate) async fn entry(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeRetailCrm>,
) -> HttpResponse {
    let is_mg = req.path().starts_with(MG_PREFIX);
    let latency = fake.with(|s| {
        s.total_requests += 1;
        s.cfg.latency
    });
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    if req.method() == Method::GET
        && let Some(id) = req.path().strip_prefix(MG_FILES)
    {
        // MG's file links are public (no token), like the storage links they stand for.
        return match fake.with(|s| s.files.get(id).cloned()) {
            Some(f) => HttpResponse::Ok().content_type(f.mime_type).body(f.bytes),
            None => HttpResponse::NotFound().finish(),
        };
    }
    let fetched = if is_mg && req.path() == format!("{MG_PREFIX}/files/upload_by_url") {
        fetch(&fake, &body).await
    } else {
        None
    };
    let reply = if let Some(reply) = fake.with(|s| injected_fault(s, is_mg)) {
        reply
    } else if is_mg {
        fake.with(|s| mg::handle(s, &req, &body, fetched))
    } else {
        let call = Call::new(&req, &body);
        fake.with(|s| api(s, &req, &call))
    };
    // A stalled create has been carried out; only its answer is late.
    let is_post = req.method() == actix_web::http::Method::POST;
    let stall = fake.with(|s| match s.cfg.stall {
        (n, delay) if n > 0 && is_post => {
            s.cfg.stall.0 = n - 1;
            Some(delay)
        }
        _ => None,
    });
    if let Some(delay) = stall {
        tokio::time::sleep(delay).await;
    }
    reply.into_response()
}

/// Where MG serves its files' bytes (`url` of `GET /files/{id}`).
pub(crate) const MG_FILES: &str = "/mg/files/";

/// MG downloading the `url` of an `upload_by_url` body.
async fn fetch(fake: &FakeRetailCrm, body: &[u8]) -> mg::Fetched {
    let url = serde_json::from_slice::<Value>(body)
        .ok()?
        .get("url")?
        .as_str()?
        .to_owned();
    let answer = match fake.http.get(&url).send().await {
        Ok(r) if r.status().is_success() => r
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| e.to_string()),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Err(e.without_url().to_string()),
    };
    Some(answer)
}

fn injected_fault(state: &mut State, is_mg: bool) -> Option<Reply> {
    let (status, remaining) = state.cfg.fault?;
    if state.cfg.fault_skip > 0 {
        state.cfg.fault_skip -= 1;
        return None;
    }
    state.cfg.fault = (remaining > 1).then_some((status, remaining - 1));
    let rate_limit = status == 503 || status == 429;
    if rate_limit {
        state.rate_limited += 1;
    }
    Some(match (is_mg, rate_limit) {
        (true, true) => json_response(status, &json!({"errors": ["Too many requests"]})),
        (true, false) => json_response(status, &json!({"errors": ["Internal server error"]})),
        (false, true) => rate_limited(state),
        (false, false) => fail(status, "Internal Server Error"),
    })
}

fn rate_limited(state: &State) -> Reply {
    if state.cfg.rate_limit_html {
        html(503, "503 Service Temporarily Unavailable")
    } else {
        fail(503, "Rate limit exceeded")
    }
}

/// Query and (for urlencoded POSTs) form parameters of a request.
pub(crate) struct Call {
    method: Method,
    params: Vec<(String, String)>,
    api_key_header: Option<String>,
    base_url: String,
}

impl Call {
    fn new(req: &HttpRequest, body: &[u8]) -> Self {
        let mut params: Vec<(String, String)> =
            serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
        let form = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        // Only urlencoded bodies carry parameters; a JSON or multipart body is ignored, so a
        // client that sends one gets "Parameter 'order' is missing" (our choice: the real
        // answer to a JSON body is UNCONFIRMED).
        if form && req.method() == Method::POST {
            params.extend(
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default(),
            );
        }
        let info = req.connection_info();
        Self {
            method: req.method().clone(),
            params,
            api_key_header: req
                .headers()
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            base_url: format!("{}://{}", info.scheme(), info.host()),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Values of an array parameter (`name[]=a&name[]=b`; `name[0]=a` too).
    fn all(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{name}[");
        self.params
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.ends_with(']'))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn api_key(&self) -> Option<&str> {
        self.api_key_header
            .as_deref()
            .or_else(|| self.get("apiKey"))
    }

    /// A required JSON-string form field.
    fn json_field(&self, name: &str) -> Result<Value, Reply> {
        let raw = self
            .get(name)
            .ok_or_else(|| fail(400, &format!("Parameter '{name}' is missing")))?;
        match serde_json::from_str::<Value>(raw) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(json_response(
                400,
                &json!({"success": false, "errorMsg": "Errors in the entity format",
                        "errors": {name: "Invalid JSON"}}),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    ApiVersions,
    Credentials,
    SystemInfo,
    Sites,
    Statuses,
    StatusGroups,
    Orders,
    OrderCreate,
    Order(String),
    OrderEdit(String),
    Customers,
    CustomerCreate,
    Customer(String),
    CustomerEdit(String),
    Module(String),
    ModuleEdit(String),
}

impl Route {
    /// The route and the HTTP method it accepts.
    fn parse(path: &str) -> Option<(Self, Method)> {
        let segments: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        let get = Method::GET;
        let post = Method::POST;
        Some(match s.as_slice() {
            ["api", "api-versions"] => (Self::ApiVersions, get),
            ["api", "credentials"] => (Self::Credentials, get),
            ["api", "system-info"] => (Self::SystemInfo, get),
            ["api", "v5", "reference", "sites"] => (Self::Sites, get),
            ["api", "v5", "reference", "statuses"] => (Self::Statuses, get),
            ["api", "v5", "reference", "status-groups"] => (Self::StatusGroups, get),
            ["api", "v5", "orders"] => (Self::Orders, get),
            ["api", "v5", "orders", "create"] => (Self::OrderCreate, post),
            ["api", "v5", "orders", id] if !id.is_empty() => (Self::Order((*id).to_owned()), get),
            ["api", "v5", "orders", id, "edit"] => (Self::OrderEdit((*id).to_owned()), post),
            ["api", "v5", "customers"] => (Self::Customers, get),
            ["api", "v5", "customers", "create"] => (Self::CustomerCreate, post),
            ["api", "v5", "customers", id] if !id.is_empty() => {
                (Self::Customer((*id).to_owned()), get)
            }
            ["api", "v5", "customers", id, "edit"] => (Self::CustomerEdit((*id).to_owned()), post),
            ["api", "v5", "integration-modules", code] if !code.is_empty() => {
                (Self::Module((*code).to_owned()), get)
            }
            ["api", "v5", "integration-modules", code, "edit"] => {
                (Self::ModuleEdit((*code).to_owned()), post)
            }
            _ => return None,
        })
    }

    fn scopes(&self) -> &'static [&'static str] {
        match self {
            Self::ApiVersions | Self::Credentials | Self::SystemInfo => &[],
            Self::Sites | Self::Statuses | Self::StatusGroups => &["reference_read"],
            Self::Orders | Self::Order(_) => &["order_read"],
            Self::OrderCreate | Self::OrderEdit(_) => &["order_write"],
            Self::Customers | Self::Customer(_) => &["customer_read"],
            Self::CustomerCreate | Self::CustomerEdit(_) => &["customer_write"],
            Self::Module(_) => &["integration_read"],
            // Registering a transport needs both (official transport core's DefaultScopes).
            Self::ModuleEdit(_) => &["integration_read", "integration_write"],
        }
    }
}

pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn api(state: &mut State, req: &HttpRequest, call: &Call) -> Reply {
    if !state.cfg.account_exists {
        // Real nginx answers an HTML page for an unknown account: 405 seen on POST; for GET
        // the status is UNCONFIRMED, we use 404.
        return if call.method == Method::POST {
            html(405, "405 Not Allowed")
        } else {
            html(404, "404 Not Found")
        };
    }
    let Some((route, method)) = Route::parse(req.path()) else {
        return fail(404, "API method not found");
    };
    if call.method != method {
        return fail(405, "Method Not Allowed");
    }
    let Some(key_name) = call.api_key() else {
        // Status of this answer is UNCONFIRMED; 403 like the wrong-key answer.
        return fail(403, "\"apiKey\" is missing.");
    };
    let Some(key) = state.keys.get_mut(key_name) else {
        return fail(403, "Wrong \"apiKey\" value.");
    };
    key.record();
    if !key.spec.api_enabled {
        // The exact text for a plan without API access is our choice.
        return fail(403, "API is not available on your current plan");
    }
    if let Some(rps) = state.cfg.rps
        && !key.bucket.take(rps)
    {
        state.rate_limited += 1;
        return rate_limited(state);
    }
    let spec = key.spec.clone();
    if !route
        .scopes()
        .iter()
        .all(|scope| spec.scopes.iter().any(|s| s == scope))
    {
        return fail(403, "Access denied.");
    }
    let ctx = Ctx {
        state,
        call,
        key: &spec,
    };
    match handle(ctx, route) {
        Ok(response) | Err(response) => response,
    }
}

struct Ctx<'a> {
    state: &'a mut State,
    call: &'a Call,
    key: &'a ApiKey,
}

type Answer = Result<Reply, Reply>;

fn handle(ctx: Ctx<'_>, route: Route) -> Answer {
    match route {
        Route::ApiVersions => Ok(json_response(
            200,
            &json!({"success": true, "versions": ["3.0", "4.0", "5.0"]}),
        )),
        Route::Credentials => Ok(credentials(&ctx)),
        Route::SystemInfo => Ok(json_response(
            200,
            &json!({"success": true, "systemVersion": "8.1.51",
                    "publicUrl": ctx.call.base_url, "technicalUrl": ctx.call.base_url}),
        )),
        Route::Sites => Ok(sites(&ctx)),
        Route::Statuses => Ok(statuses(&ctx)),
        Route::StatusGroups => Ok(status_groups(&ctx)),
        Route::Orders => orders_list(&ctx),
        Route::OrderCreate => order_create(ctx),
        Route::Order(id) => order_get(&ctx, &id),
        Route::OrderEdit(id) => order_edit(ctx, &id),
        Route::Customers => customers_list(&ctx),
        Route::CustomerCreate => customer_create(ctx),
        Route::Customer(id) => customer_get(&ctx, &id),
        Route::CustomerEdit(id) => customer_edit(ctx, &id),
        Route::Module(code) => module_get(&ctx, &code),
        Route::ModuleEdit(code) => module_edit(ctx, &code),
    }
}

fn credentials(ctx: &Ctx<'_>) -> Reply {
    let scopes = &ctx.key.scopes;
    // Deprecated path list, derived from the scopes so old-style checks see the same rights.
    let mut paths = Vec::new();
    for (scope, list) in [
        (
            "order_read",
            &["/api/v5/orders", "/api/v5/orders/{externalId}"][..],
        ),
        (
            "order_write",
            &["/api/v5/orders/create", "/api/v5/orders/{externalId}/edit"][..],
        ),
        (
            "customer_read",
            &["/api/v5/customers", "/api/v5/customers/{externalId}"][..],
        ),
        (
            "customer_write",
            &[
                "/api/v5/customers/create",
                "/api/v5/customers/{externalId}/edit",
            ][..],
        ),
        (
            "reference_read",
            &[
                "/api/v5/reference/sites",
                "/api/v5/reference/statuses",
                "/api/v5/reference/status-groups",
            ][..],
        ),
        (
            "integration_read",
            &["/api/v5/integration-modules/{code}"][..],
        ),
        (
            "integration_write",
            &["/api/v5/integration-modules/{code}/edit"][..],
        ),
    ] {
        if scopes.iter().any(|s| s == scope) {
            paths.extend_from_slice(list);
        }
    }
    let site_access = match ctx.key.site_access {
        SiteAccess::Full => "access_full",
        SiteAccess::Selective => "access_selective",
    };
    // For access_full we list every store (what `sitesAvailable` holds then is UNCONFIRMED).
    json_response(
        200,
        &json!({"success": true, "scopes": scopes, "credentials": paths,
                "siteAccess": site_access, "sitesAvailable": ctx.state.key_sites(ctx.key)}),
    )
}

/// A PHP associative array: `[]` when empty, an object otherwise.
fn php_map(map: Map<String, Value>) -> Value {
    if map.is_empty() {
        json!([])
    } else {
        Value::Object(map)
    }
}

fn sites(ctx: &Ctx<'_>) -> Reply {
    let reachable = ctx.state.key_sites(ctx.key);
    let map: Map<String, Value> = ctx
        .state
        .sites
        .iter()
        .filter(|(code, _)| reachable.contains(code))
        .map(|(code, site)| (code.clone(), site.clone()))
        .collect();
    json_response(200, &json!({"success": true, "sites": php_map(map)}))
}

fn statuses(ctx: &Ctx<'_>) -> Reply {
    let map: Map<String, Value> = ctx
        .state
        .statuses
        .iter()
        .map(|(code, name, group, ordering)| {
            (
                code.clone(),
                json!({"name": name, "code": code, "active": true, "ordering": ordering, "group": group}),
            )
        })
        .collect();
    json_response(200, &json!({"success": true, "statuses": php_map(map)}))
}

fn status_groups(ctx: &Ctx<'_>) -> Reply {
    let map: Map<String, Value> = ctx
        .state
        .groups
        .iter()
        .map(|(code, name, ordering, process)| {
            let statuses: Vec<&String> = ctx
                .state
                .statuses
                .iter()
                .filter(|(_, _, g, _)| g == code)
                .map(|(c, ..)| c)
                .collect();
            (
                code.clone(),
                json!({"name": name, "code": code, "active": true, "ordering": ordering,
                       "process": process, "statuses": statuses}),
            )
        })
        .collect();
    json_response(200, &json!({"success": true, "statusGroups": php_map(map)}))
}

/// Store of a site-dependent call. With `site` given it must be one the key reaches (else
/// 403 `Access denied.`, UNCONFIRMED); without it a key reaching one store uses that store, a
/// key reaching several gets 400 `Parameter 'site' is missing` (UNCONFIRMED text) when the
/// method needs a store, or `None` (all reachable stores) when it does not.
fn resolve_site(ctx: &Ctx<'_>, required: bool) -> Result<Option<String>, Reply> {
    let reachable = ctx.state.key_sites(ctx.key);
    match ctx.call.get("site") {
        Some(site) if reachable.iter().any(|s| s == site) && ctx.state.sites.contains_key(site) => {
            Ok(Some(site.to_owned()))
        }
        Some(_) => Err(fail(403, "Access denied.")),
        None => match reachable.as_slice() {
            [only] => Ok(Some(only.clone())),
            [] => Err(fail(403, "Access denied.")),
            _ if required => Err(fail(400, "Parameter 'site' is missing")),
            _ => Ok(None),
        },
    }
}

fn validation_failed(ctx: &Ctx<'_>, errors: &FieldErrors) -> Reply {
    let errors = if ctx.state.cfg.errors_as_list {
        Value::Array(
            errors
                .iter()
                .map(|(f, m)| Value::String(format!("{f}: {m}")))
                .collect(),
        )
    } else {
        Value::Object(
            errors
                .iter()
                .map(|(f, m)| (f.clone(), Value::String(m.clone())))
                .collect(),
        )
    };
    json_response(
        400,
        &json!({"success": false, "errorMsg": "Errors in the entity format", "errors": errors}),
    )
}

/// `by` (default `externalId`, as RetailCRM) and the entity it designates.
fn find_entity(
    ctx: &Ctx<'_>,
    raw_id: &str,
    by_external: impl Fn(&State, &str, Option<&str>) -> Option<i64>,
    exists: impl Fn(&State, i64) -> bool,
) -> Result<i64, Reply> {
    let not_found = || fail(404, "Not found");
    match ctx.call.get("by").unwrap_or("externalId") {
        "id" => {
            let id: i64 = raw_id.parse().map_err(|_| not_found())?;
            exists(ctx.state, id).then_some(id).ok_or_else(not_found)
        }
        "externalId" => {
            // External ids are unique per store, so the store is needed to resolve one.
            let site = resolve_site(ctx, true)?;
            by_external(ctx.state, raw_id, site.as_deref()).ok_or_else(not_found)
        }
        _ => Err(json_response(
            400,
            &json!({"success": false, "errorMsg": "Errors in the input parameters",
                    "errors": {"by": "Value must be one of: id, externalId"}}),
        )),
    }
}

/// Entities must be in a store the key reaches (and in `site` when given).
fn visible(ctx: &Ctx<'_>, entity: &Value) -> bool {
    let Some(site) = entity.get("site").and_then(Value::as_str) else {
        return false;
    };
    let reachable = ctx.state.key_sites(ctx.key);
    reachable.iter().any(|s| s == site) && ctx.call.get("site").is_none_or(|s| s == site)
}

fn pagination(ctx: &Ctx<'_>, items: Vec<Value>) -> Result<(Value, Vec<Value>), Reply> {
    let bad_input = |field: &str, message: &str| {
        json_response(
            400,
            &json!({"success": false, "errorMsg": "Errors in the input parameters",
                    "errors": {field: message}}),
        )
    };
    // Allowed page sizes 20/50/100; the 400 text for others is UNCONFIRMED.
    let limit: usize = match ctx.call.get("limit") {
        None => 20,
        Some(raw) => match raw.parse() {
            Ok(l @ (20 | 50 | 100)) => l,
            _ => {
                return Err(bad_input(
                    "limit",
                    "The value you selected is not a valid choice.",
                ));
            }
        },
    };
    let page: usize = match ctx.call.get("page") {
        None => 1,
        Some(raw) => match raw.parse() {
            Ok(p) if p >= 1 => p,
            _ => {
                return Err(bad_input(
                    "page",
                    "This value should be greater than or equal to 1.",
                ));
            }
        },
    };
    let total = items.len();
    // 0 pages for an empty result (whether RetailCRM says 0 or 1 is UNCONFIRMED).
    let pages = total.div_ceil(limit);
    let slice = items
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .collect();
    Ok((
        json!({"limit": limit, "totalCount": total, "currentPage": page, "totalPageCount": pages}),
        slice,
    ))
}

fn orders_list(ctx: &Ctx<'_>) -> Answer {
    resolve_site(ctx, false)?;
    let c = ctx.call;
    let ids = c.all("filter[ids]");
    let externals = c.all("filter[externalIds]");
    let numbers = c.all("filter[numbers]");
    let sites = c.all("filter[sites]");
    let statuses = c.all("filter[extendedStatus]");
    let customer_id = c.get("filter[customerId]");
    let customer_ext = c.get("filter[customerExternalId]");
    let email = c.get("filter[email]");
    let items: Vec<Value> = ctx
        .state
        .orders
        .values()
        .filter(|o| visible(ctx, o))
        .filter(|o| {
            ids.is_empty()
                || ids
                    .iter()
                    .any(|i| int_field(o, "id").map(|v| v.to_string()).as_deref() == Some(i))
        })
        .filter(|o| {
            externals.is_empty()
                || externals
                    .iter()
                    .any(|e| o.get("externalId").and_then(Value::as_str) == Some(e))
        })
        .filter(|o| {
            numbers.is_empty()
                || numbers
                    .iter()
                    .any(|n| o.get("number").and_then(Value::as_str) == Some(n))
        })
        .filter(|o| {
            sites.is_empty()
                || sites
                    .iter()
                    .any(|s| o.get("site").and_then(Value::as_str) == Some(s))
        })
        .filter(|o| {
            // Status codes or group codes (group matching is UNCONFIRMED).
            statuses.is_empty()
                || o.get("status").and_then(Value::as_str).is_some_and(|st| {
                    statuses.iter().any(|wanted| {
                        *wanted == st
                            || ctx
                                .state
                                .statuses
                                .iter()
                                .any(|(code, _, group, _)| code == st && group == wanted)
                    })
                })
        })
        .filter(|o| {
            customer_id.is_none_or(|id| {
                o["customer"].get("id").map(Value::to_string).as_deref() == Some(id)
            })
        })
        .filter(|o| {
            customer_ext.is_none_or(|ext| {
                o["customer"].get("externalId").and_then(Value::as_str) == Some(ext)
            })
        })
        .filter(|o| email.is_none_or(|e| o.get("email").and_then(Value::as_str) == Some(e)))
        .map(render_order)
        .collect();
    let (pagination, orders) = pagination(ctx, items)?;
    Ok(json_response(
        200,
        &json!({"success": true, "pagination": pagination, "orders": orders}),
    ))
}

fn order_get(ctx: &Ctx<'_>, raw_id: &str) -> Answer {
    let id = find_entity(
        ctx,
        raw_id,
        |s, ext, site| s.order_by_external_id(ext, site),
        |s, id| s.orders.contains_key(&id),
    )?;
    let order = ctx.state.orders.get(&id).filter(|o| visible(ctx, o));
    let order = order.ok_or_else(|| fail(404, "Not found"))?;
    Ok(json_response(
        200,
        &json!({"success": true, "order": render_order(order)}),
    ))
}

fn order_create(ctx: Ctx<'_>) -> Answer {
    let input = ctx.call.json_field("order")?;
    let site = resolve_site(&ctx, true)?.unwrap_or_default();
    let id = ctx
        .state
        .create_order(&site, &input)
        .map_err(|errors| validation_failed(&ctx, &errors))?;
    // The create answer lists payments as an array (GET renders them as a map).
    let order = ctx.state.orders.get(&id).cloned().unwrap_or(Value::Null);
    Ok(json_response(
        201,
        &json!({"success": true, "id": id, "order": order}),
    ))
}

fn order_edit(ctx: Ctx<'_>, raw_id: &str) -> Answer {
    let input = ctx.call.json_field("order")?;
    let id = find_entity(
        &ctx,
        raw_id,
        |s, ext, site| s.order_by_external_id(ext, site),
        |s, id| s.orders.contains_key(&id),
    )?;
    if !ctx.state.orders.get(&id).is_some_and(|o| visible(&ctx, o)) {
        return Err(fail(404, "Not found"));
    }
    ctx.state
        .edit_order(id, &input)
        .map_err(|errors| validation_failed(&ctx, &errors))?;
    let order = ctx.state.orders.get(&id).map(render_order);
    Ok(json_response(
        200,
        &json!({"success": true, "id": id, "order": order}),
    ))
}

/// `filter[name]`: free-text search over names, email and phones. Phones match when the digits
/// of the query occur in the digits of a phone (the real matching rules are UNCONFIRMED; the
/// 7/8 trunk-prefix equivalence of Russian numbers is not modelled).
fn customer_matches_name(customer: &Value, query: &str) -> bool {
    let query_digits = digits(query);
    if query_digits.len() >= 5 {
        let phones = customer.get("phones").and_then(Value::as_array);
        if phones.is_some_and(|phones| {
            phones.iter().any(|p| {
                p.get("number")
                    .and_then(Value::as_str)
                    .is_some_and(|n| digits(n).contains(&query_digits))
            })
        }) {
            return true;
        }
    }
    let needle = query.to_lowercase();
    ["firstName", "lastName", "patronymic", "email"]
        .iter()
        .filter_map(|f| customer.get(*f).and_then(Value::as_str))
        .any(|v| v.to_lowercase().contains(&needle))
}

fn customers_list(ctx: &Ctx<'_>) -> Answer {
    resolve_site(ctx, false)?;
    let c = ctx.call;
    let ids = c.all("filter[ids]");
    let externals = c.all("filter[externalIds]");
    let sites = c.all("filter[sites]");
    let name = c.get("filter[name]").filter(|n| !n.is_empty());
    let email = c.get("filter[email]");
    let items: Vec<Value> = ctx
        .state
        .customers
        .values()
        .filter(|cu| visible(ctx, cu))
        .filter(|cu| {
            ids.is_empty()
                || ids
                    .iter()
                    .any(|i| int_field(cu, "id").map(|v| v.to_string()).as_deref() == Some(i))
        })
        .filter(|cu| {
            externals.is_empty()
                || externals
                    .iter()
                    .any(|e| cu.get("externalId").and_then(Value::as_str) == Some(e))
        })
        .filter(|cu| {
            sites.is_empty()
                || sites
                    .iter()
                    .any(|s| cu.get("site").and_then(Value::as_str) == Some(s))
        })
        .filter(|cu| name.is_none_or(|n| customer_matches_name(cu, n)))
        .filter(|cu| email.is_none_or(|e| cu.get("email").and_then(Value::as_str) == Some(e)))
        .cloned()
        .collect();
    let (pagination, customers) = pagination(ctx, items)?;
    Ok(json_response(
        200,
        &json!({"success": true, "pagination": pagination, "customers": customers}),
    ))
}

fn customer_get(ctx: &Ctx<'_>, raw_id: &str) -> Answer {
    let id = find_entity(
        ctx,
        raw_id,
        |s, ext, site| match site {
            Some(site) => s.customer_by_external_id(ext, site),
            None => None,
        },
        |s, id| s.customers.contains_key(&id),
    )?;
    let customer = ctx.state.customers.get(&id).filter(|c| visible(ctx, c));
    let customer = customer.ok_or_else(|| fail(404, "Not found"))?;
    Ok(json_response(
        200,
        &json!({"success": true, "customer": customer}),
    ))
}

fn customer_create(ctx: Ctx<'_>) -> Answer {
    let input = ctx.call.json_field("customer")?;
    let site = resolve_site(&ctx, true)?.unwrap_or_default();
    let id = ctx
        .state
        .create_customer(&site, &input)
        .map_err(|errors| validation_failed(&ctx, &errors))?;
    Ok(json_response(201, &json!({"success": true, "id": id})))
}

fn customer_edit(ctx: Ctx<'_>, raw_id: &str) -> Answer {
    let input = ctx.call.json_field("customer")?;
    let id = find_entity(
        &ctx,
        raw_id,
        |s, ext, site| match site {
            Some(site) => s.customer_by_external_id(ext, site),
            None => None,
        },
        |s, id| s.customers.contains_key(&id),
    )?;
    if !ctx
        .state
        .customers
        .get(&id)
        .is_some_and(|c| visible(&ctx, c))
    {
        return Err(fail(404, "Not found"));
    }
    ctx.state
        .edit_customer(id, &input)
        .map_err(|errors| validation_failed(&ctx, &errors))?;
    Ok(json_response(200, &json!({"success": true, "id": id})))
}

fn module_get(ctx: &Ctx<'_>, code: &str) -> Answer {
    let module = ctx
        .state
        .modules
        .get(code)
        .ok_or_else(|| fail(404, "Not found"))?;
    Ok(json_response(
        200,
        &json!({"success": true, "integrationModule": module.value}),
    ))
}

fn module_edit(ctx: Ctx<'_>, code: &str) -> Answer {
    let input = ctx.call.json_field("integrationModule")?;
    let mut errors = FieldErrors::new();
    if input
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        errors.push(("name".into(), "This value should not be blank.".into()));
    }
    if let Some(body_code) = input.get("code").and_then(Value::as_str)
        && body_code != code
    {
        errors.push((
            "code".into(),
            format!("The code must match the one in the URL (\"{code}\")."),
        ));
    }
    let mg = input
        .get("integrations")
        .and_then(|i| i.get("mgTransport"))
        .filter(|m| m.is_object());
    let client_id = input
        .get("clientId")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let webhook_url = mg
        .and_then(|m| m.get("webhookUrl"))
        .and_then(Value::as_str)
        .filter(|w| !w.is_empty())
        .map(str::to_owned);
    if mg.is_some() {
        // MG identifies the account on webhooks by clientId, so a transport needs both.
        if client_id.is_none() {
            errors.push(("clientId".into(), "This value should not be blank.".into()));
        }
        if webhook_url.is_none() {
            errors.push((
                "integrations.mgTransport.webhookUrl".into(),
                "This value should not be blank.".into(),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(validation_failed(&ctx, &errors));
    }
    if mg.is_some() && !ctx.key.chats_enabled {
        // How RetailCRM refuses a transport on an account without chats is UNCONFIRMED; this
        // 400 and text are our choice.
        return Err(fail(400, "Chats are not activated"));
    }

    let refresh = mg
        .and_then(|m| m.get("refreshToken"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let previous = ctx.state.modules.get(code).and_then(|m| m.token.clone());
    let token = match (mg, previous) {
        (None, previous) => {
            if let Some(old) = previous {
                ctx.state.tokens.remove(&old);
            }
            None
        }
        (Some(_), Some(old)) if !refresh => Some(old),
        (Some(_), old) => {
            if let Some(old) = old {
                ctx.state.tokens.remove(&old);
            }
            Some(format!("{:032x}", rand::random::<u128>()))
        }
    };
    let mut value = input.clone();
    value["code"] = json!(code);
    if value.get("integrationCode").is_none() {
        value["integrationCode"] = json!(code);
    }
    if let (Some(token), Some(webhook)) = (&token, &webhook_url) {
        value["integrations"]["mgTransport"] =
            json!({"webhookUrl": webhook, "token": token, "isActive": true});
        ctx.state.tokens.insert(token.clone(), code.to_owned());
    }
    ctx.state.modules.insert(
        code.to_owned(),
        super::state::ModuleRec {
            value,
            client_id,
            webhook_url,
            token: token.clone(),
        },
    );
    let info = match token {
        Some(token) => json!({"mgTransport": {
            "endpointUrl": format!("{}/mg", ctx.call.base_url), "token": token
        }}),
        // PHP renders the empty info map as a list.
        None => json!([]),
    };
    Ok(json_response(200, &json!({"success": true, "info": info})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            Route::parse("/api/v5/orders/create").map(|r| r.0),
            Some(Route::OrderCreate)
        );
        assert_eq!(
            Route::parse("/api/v5/orders/A%2F1").map(|r| r.0),
            Some(Route::Order("A/1".into()))
        );
        assert_eq!(Route::parse("/api/v6/orders"), None);
        assert_eq!(Route::parse("/api/v5/orders/"), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%D0%B0"), "а");
    }
}
