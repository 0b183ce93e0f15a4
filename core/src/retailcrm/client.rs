//! The RetailCRM API v5 client.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::domain::{DomainError, normalize_domain};
use super::error::RetailCrmError;
use super::rate_limit::{self, Limiter};
use super::types::{
    Credentials, Customer, IntegrationModule, MgTransportInfo, NewCustomer, NewOrder, Order,
    Pagination, Site, Status, StatusGroup, de,
};
use crate::upstream::{self, HttpClient, OutboundPolicy};

/// Default per-request timeout: RetailCRM answers in well under a second normally; 30 s covers a
/// slow list page without letting a hung connection stall a worker.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Retries of a 503/429 answer before giving up, as the official GO client does.
const RATE_LIMIT_RETRIES: u32 = 3;
/// First backoff after a 503/429; doubled per retry (100, 200, 400 ms), as the GO client does.
const RATE_LIMIT_BACKOFF: Duration = Duration::from_millis(100);
/// Largest page RetailCRM accepts on list methods.
const PAGE_LIMIT: &str = "100";
/// Guard against a server that keeps reporting more pages: 500 × 100 entities is far more
/// than a single customer or phone ever has.
const MAX_PAGES: i64 = 500;

type Result<T> = std::result::Result<T, RetailCrmError>;

/// Client of one RetailCRM account with one API key. Cloning is cheap (shared HTTP pool and
/// rate limiter), so clone it into tasks instead of wrapping it in `Arc`.
#[derive(Clone)]
pub struct RetailCrm {
    base: Arc<str>,
    api_key: Arc<str>,
    http: HttpClient,
    limiter: Arc<Limiter>,
}

impl fmt::Debug for RetailCrm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key: Debug output ends up in logs.
        f.debug_struct("RetailCrm")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RetailCrm {
    /// A client for `account` (anything [`normalize_domain`] accepts) with `api_key`, under the
    /// production outbound policy. Uses the process-wide rate limiter of this account+key
    /// (10 rps unless configured otherwise).
    pub fn new(account: &str, api_key: &str) -> std::result::Result<Self, DomainError> {
        Self::with_client(
            HttpClient::new(DEFAULT_TIMEOUT, OutboundPolicy::STRICT),
            account,
            api_key,
        )
    }

    /// Like [`RetailCrm::new`] on a caller's client (and its outbound policy). Building a
    /// client (TLS set-up) costs milliseconds of CPU, so per-job callers share one instead of
    /// building their own.
    pub fn with_client(
        http: HttpClient,
        account: &str,
        api_key: &str,
    ) -> std::result::Result<Self, DomainError> {
        let base = normalize_domain(account, http.policy())?;
        let limiter = rate_limit::shared(&base, api_key);
        Ok(Self {
            base: base.into(),
            api_key: api_key.into(),
            http,
            limiter,
        })
    }

    /// Same client with a different per-request timeout.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        let policy = self.http.policy();
        self.with_http_client(HttpClient::new(timeout, policy))
    }

    /// Same client on a caller-provided client (to share one pool across clients).
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// Sets the rate (requests per second) of this account+key for the whole process: every
    /// client of the same key shares the budget, so the last setting wins for all of them.
    pub fn with_rate_limit(self, rps: f64) -> Self {
        self.limiter.set_rate(rps);
        self
    }

    /// Takes this account+key's slots from `budget`, shared with every process that uses the
    /// same Redis (queue mode), for every client of the key in this process.
    pub fn with_shared_budget(self, budget: Option<&super::shared_budget::SharedBudget>) -> Self {
        if let Some(b) = budget {
            self.limiter.share(b);
        }
        self
    }

    /// The normalised account URL, e.g. `https://shop.retailcrm.ru`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /api/api-versions`.
    pub async fn api_versions(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default, deserialize_with = "de::strings")]
            versions: Vec<String>,
        }
        let answer: Answer = self.get(&["api", "api-versions"], Vec::new()).await?;
        Ok(answer.versions)
    }

    /// `GET /api/credentials`: scopes and stores of the key.
    pub async fn credentials(&self) -> Result<Credentials> {
        self.get(&["api", "credentials"], Vec::new()).await
    }

    /// `GET /api/v5/reference/sites`, keyed by store code.
    pub async fn sites(&self) -> Result<BTreeMap<String, Site>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default, deserialize_with = "de::map_by_code")]
            sites: BTreeMap<String, Site>,
        }
        let answer: Answer = self
            .get(&["api", "v5", "reference", "sites"], Vec::new())
            .await?;
        Ok(answer.sites)
    }

    /// `GET /api/v5/reference/statuses`, keyed by status code.
    pub async fn statuses(&self) -> Result<BTreeMap<String, Status>> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default, deserialize_with = "de::map_by_code")]
            statuses: BTreeMap<String, Status>,
        }
        let answer: Answer = self
            .get(&["api", "v5", "reference", "statuses"], Vec::new())
            .await?;
        Ok(answer.statuses)
    }

    /// `GET /api/v5/reference/status-groups`, keyed by group code.
    pub async fn status_groups(&self) -> Result<BTreeMap<String, StatusGroup>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            #[serde(default, deserialize_with = "de::map_by_code")]
            status_groups: BTreeMap<String, StatusGroup>,
        }
        let answer: Answer = self
            .get(&["api", "v5", "reference", "status-groups"], Vec::new())
            .await?;
        Ok(answer.status_groups)
    }

    /// `GET /api/v5/orders/{id}?by=id`. A missing order is [`RetailCrmError::NotFound`].
    pub async fn order_get(&self, id: i64, site: Option<&str>) -> Result<Order> {
        let id = id.to_string();
        let answer: OrderAnswer = self
            .get(&["api", "v5", "orders", &id], by_and_site("id", site))
            .await?;
        Ok(answer.order)
    }

    /// `GET /api/v5/orders/{externalId}?by=externalId`; `None` when there is no such order.
    pub async fn order_get_by_external_id(
        &self,
        external_id: &str,
        site: Option<&str>,
    ) -> Result<Option<Order>> {
        let answer: Result<OrderAnswer> = self
            .get(
                &["api", "v5", "orders", external_id],
                by_and_site("externalId", site),
            )
            .await;
        match answer {
            Ok(answer) => Ok(Some(answer.order)),
            Err(RetailCrmError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/v5/orders/create`; returns the new CRM id and the order as RetailCRM stored it.
    pub async fn order_create(&self, order: &NewOrder, site: Option<&str>) -> Result<(i64, Order)> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(deserialize_with = "de::int")]
            id: i64,
            #[serde(default, deserialize_with = "de::opt_object")]
            order: Option<Order>,
        }
        let form = json_form("order", order, site)?;
        let answer: Answer = self.post(&["api", "v5", "orders", "create"], form).await?;
        let order = match answer.order {
            Some(order) => order,
            // Older answers carried only the id; fetch the order rather than invent one.
            None => self.order_get(answer.id, site).await?,
        };
        Ok((answer.id, order))
    }

    /// All orders of a customer (`GET /api/v5/orders?filter[customerId]=…`), every page.
    pub async fn orders_by_customer(
        &self,
        customer_id: i64,
        site: Option<&str>,
    ) -> Result<Vec<Order>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            pagination: Pagination,
            #[serde(default, deserialize_with = "de::list_or_map")]
            orders: Vec<Order>,
        }
        let mut filter = vec![("filter[customerId]".to_owned(), customer_id.to_string())];
        filter.extend(list_site(site));
        self.paginate(&["api", "v5", "orders"], filter, |page: Page| {
            (page.pagination, page.orders)
        })
        .await
    }

    /// Customers whose phone is `phone` in any formatting. RetailCRM has no phone filter; its
    /// free-text `filter[name]` also searches phones, but how loosely is undocumented, so the
    /// answers are re-checked here by comparing digits (7/8 trunk prefix of Russian numbers
    /// treated as equal).
    pub async fn customers_find_by_phone(
        &self,
        phone: &str,
        site: Option<&str>,
    ) -> Result<Vec<Customer>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            pagination: Pagination,
            #[serde(default, deserialize_with = "de::list_or_map")]
            customers: Vec<Customer>,
        }
        let wanted = digits(phone);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut filter = vec![("filter[name]".to_owned(), wanted.clone())];
        filter.extend(list_site(site));
        let found = self
            .paginate(&["api", "v5", "customers"], filter, |page: Page| {
                (page.pagination, page.customers)
            })
            .await?;
        Ok(found
            .into_iter()
            .filter(|c| {
                c.phones
                    .iter()
                    .any(|p| same_phone(&digits(&p.number), &wanted))
            })
            .collect())
    }

    /// `GET /api/v5/customers/{id}?by=id`. A missing customer is [`RetailCrmError::NotFound`].
    pub async fn customer_get(&self, id: i64, site: Option<&str>) -> Result<Customer> {
        #[derive(Deserialize)]
        struct Answer {
            customer: Customer,
        }
        let id = id.to_string();
        let answer: Answer = self
            .get(&["api", "v5", "customers", &id], by_and_site("id", site))
            .await?;
        Ok(answer.customer)
    }

    /// `POST /api/v5/customers/create`; returns the new CRM id.
    pub async fn customer_create(&self, customer: &NewCustomer, site: Option<&str>) -> Result<i64> {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(deserialize_with = "de::int")]
            id: i64,
        }
        let form = json_form("customer", customer, site)?;
        let answer: Answer = self
            .post(&["api", "v5", "customers", "create"], form)
            .await?;
        Ok(answer.id)
    }

    /// `POST /api/v5/integration-modules/{code}/edit`: creates or updates our module and, with
    /// `integrations.mgTransport` set, registers the MG transport. Needs the `integration_read`
    /// and `integration_write` scopes. Returns where and how to call the transport API; an
    /// answer without `info.mgTransport` (module sent without it, or chats not enabled) is
    /// [`RetailCrmError::Unexpected`].
    pub async fn integration_module_edit(
        &self,
        module: &IntegrationModule,
    ) -> Result<MgTransportInfo> {
        #[derive(Deserialize)]
        struct Info {
            #[serde(default, rename = "mgTransport", deserialize_with = "de::opt_object")]
            mg_transport: Option<MgTransportInfo>,
        }
        #[derive(Deserialize)]
        struct Answer {
            // PHP sends `"info": []` when there is nothing to report.
            #[serde(default, deserialize_with = "de::opt_object")]
            info: Option<Info>,
        }
        let form = json_form("integrationModule", module, None)?;
        let answer: Answer = self
            .post(
                &["api", "v5", "integration-modules", &module.code, "edit"],
                form,
            )
            .await?;
        answer
            .info
            .and_then(|info| info.mg_transport)
            .ok_or_else(|| RetailCrmError::Unexpected {
                status: 200,
                detail: "the module was saved but the answer has no info.mgTransport".to_owned(),
            })
    }

    /// Walks `currentPage`/`totalPageCount` with the largest page size.
    async fn paginate<P, T>(
        &self,
        path: &[&str],
        filter: Vec<(String, String)>,
        split: impl Fn(P) -> (Pagination, Vec<T>),
    ) -> Result<Vec<T>>
    where
        P: DeserializeOwned,
    {
        let mut all = Vec::new();
        let mut page = 1;
        loop {
            let mut query = filter.clone();
            query.push(("limit".to_owned(), PAGE_LIMIT.to_owned()));
            query.push(("page".to_owned(), page.to_string()));
            let (pagination, items) = split(self.get(path, query).await?);
            let empty = items.is_empty();
            all.extend(items);
            let current = pagination.current_page.unwrap_or(page);
            let total = pagination.total_page_count.unwrap_or(current);
            // An empty page ends the walk whatever the counters say (some answers report
            // totalPageCount 1 for an empty result, others 0).
            if empty || current >= total || page >= MAX_PAGES {
                return Ok(all);
            }
            page = current + 1;
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: Vec<(String, String)>,
    ) -> Result<T> {
        self.execute(Method::GET, path, &query, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &[&str],
        form: Vec<(String, String)>,
    ) -> Result<T> {
        self.execute(Method::POST, path, &[], Some(&form)).await
    }

    /// One API call: waits for the key's rate-limit slot, sends, and retries 503/429 answers
    /// with exponential backoff before reporting [`RetailCrmError::RateLimited`].
    async fn execute<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(String, String)],
        form: Option<&[(String, String)]>,
    ) -> Result<T> {
        let url = self.url(path)?;
        let mut retries = 0;
        loop {
            self.limiter.acquire().await;
            // The key goes in a header, never in the query, so it cannot leak into URLs that
            // reqwest errors and proxies log.
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .map_err(RetailCrmError::Refused)?
                .header("X-API-KEY", &*self.api_key);
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(form) = form {
                request = request.form(form);
            }
            let response = request
                .send()
                .await
                .map_err(RetailCrmError::from_transport)?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let body = upstream::read_body(response)
                .await
                .map_err(|e| RetailCrmError::from_body(status, e))?;

            if status == 503 || status == 429 {
                if retries < RATE_LIMIT_RETRIES {
                    let pause = RATE_LIMIT_BACKOFF * 2u32.pow(retries);
                    tracing::debug!(status, ?pause, path = %url.path(), "RetailCRM rate limit, retrying");
                    tokio::time::sleep(pause).await;
                    retries += 1;
                    continue;
                }
                return Err(RetailCrmError::RateLimited {
                    status,
                    retry_after,
                });
            }
            let answer = decode(status, &String::from_utf8_lossy(&body));
            if let Err(e) = &answer
                && e.is_unexpected_body()
            {
                upstream::log_unexpected_body("RetailCRM", status, &body, &[&self.api_key]);
            }
            return answer;
        }
    }

    fn url(&self, path: &[&str]) -> Result<Url> {
        let unexpected = |detail: String| RetailCrmError::Unexpected { status: 0, detail };
        let mut url =
            Url::parse(&self.base).map_err(|e| unexpected(format!("bad base URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| unexpected("base URL cannot have a path".to_owned()))?
            .pop_if_empty()
            // Each segment is percent-encoded, so an external id with "/" stays one segment.
            .extend(path);
        Ok(url)
    }
}

#[derive(Deserialize)]
struct OrderAnswer {
    order: Order,
}

/// Turns a final answer into `T` or the matching error.
fn decode<T: DeserializeOwned>(status: u16, body: &str) -> Result<T> {
    if (200..300).contains(&status)
        && let Ok(value) = serde_json::from_str::<Value>(body)
        && value.get("success").and_then(Value::as_bool) != Some(false)
    {
        // serde's message may quote values from the body, which stays out of the page.
        return serde_json::from_value(value).map_err(|e| {
            tracing::warn!(error = %e, "RetailCRM answer does not match the API");
            RetailCrmError::Unexpected {
                status,
                detail: "the answer does not have the expected fields".to_owned(),
            }
        });
    }
    Err(RetailCrmError::from_answer(status, body))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// POST form with one JSON-encoded entity field, the way RetailCRM wants nested data.
fn json_form<T: serde::Serialize>(
    field: &str,
    entity: &T,
    site: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let json = serde_json::to_string(entity).map_err(|e| RetailCrmError::Unexpected {
        status: 0,
        detail: format!("cannot encode {field}: {e}"),
    })?;
    let mut form = vec![(field.to_owned(), json)];
    if let Some(site) = site {
        form.push(("site".to_owned(), site.to_owned()));
    }
    Ok(form)
}

/// `by` is always sent explicitly: RetailCRM defaults to `externalId`, which would silently
/// look a CRM id up as an external id.
fn by_and_site(by: &str, site: Option<&str>) -> Vec<(String, String)> {
    let mut query = vec![("by".to_owned(), by.to_owned())];
    if let Some(site) = site {
        query.push(("site".to_owned(), site.to_owned()));
    }
    query
}

/// List methods get the store both as `site` (what multi-store keys require) and as
/// `filter[sites][]` (the documented list filter), so either reading restricts the list.
fn list_site(site: Option<&str>) -> Vec<(String, String)> {
    match site {
        Some(site) => vec![
            ("site".to_owned(), site.to_owned()),
            ("filter[sites][]".to_owned(), site.to_owned()),
        ],
        None => Vec::new(),
    }
}

fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// Same number after stripping formatting; a Russian 11-digit number written with the trunk
/// prefix 8 equals the same number with country code 7.
fn same_phone(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let russian = |s: &str| s.len() == 11 && (s.starts_with('7') || s.starts_with('8'));
    russian(a) && russian(b) && a[1..] == b[1..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_compare_by_digits() {
        assert_eq!(digits("+7 (999) 123-45-67"), "79991234567");
        assert!(same_phone("79991234567", "79991234567"));
        assert!(same_phone("89991234567", "79991234567"));
        assert!(!same_phone("799912345678", "79991234567"));
        assert!(!same_phone("49991234567", "79991234567"));
    }

    #[test]
    fn urls_keep_external_ids_in_one_segment() {
        let client = RetailCrm::new("shop", "k").expect("client");
        let url = client.url(&["api", "v5", "orders", "A/1 b"]).expect("url");
        assert_eq!(
            url.as_str(),
            "https://shop.retailcrm.ru/api/v5/orders/A%2F1%20b"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let client = RetailCrm::new("shop", "secret-key").expect("client");
        assert!(!format!("{client:?}").contains("secret-key"));
    }

    #[test]
    fn success_false_on_200_is_an_error() {
        let r: Result<Value> = decode(200, r#"{"success":false,"errorMsg":"Not found"}"#);
        assert!(matches!(r, Err(RetailCrmError::NotFound { .. })));
        let ok: Result<Value> = decode(201, r#"{"success":true,"id":1}"#);
        assert!(ok.is_ok());
    }
}
