//! Every page and htmx fragment of a realistic set-up, read the way an admin reads it: the
//! Russian UI holds no English sentence and the English UI no Cyrillic, except what an upstream
//! wrote (shown as a quote) and what the admin typed.
//!
//! The set-up: a RetailCRM account, a WhatsApp gateway and a Telegram bot (the testkit fakes),
//! both guide bundles, a run that fails in each way a run can fail (the upstream refuses, the
//! input is no phone number, RetailCRM refuses the data, Telegram knows no such chat), a refused
//! Start, a template with a syntax error, a bad domain, a wrong key, failed provider checks,
//! error pages.
//!
//! "An English sentence" in the Russian page: after dropping scripts, styles, code and quoted
//! upstream text (`<q class="upstream">`, «…» in plain-text answers), two or more Latin words
//! in a row that are not product or API terms. In the English page: any Cyrillic word outside
//! quoted upstream text and the data the test itself put in (names, the account's statuses).

use std::time::Duration;

use serde_json::json;
use svyazka_core::bundles::{Step, Value};
use svyazka_testkit::retailcrm::{ApiKey, FakeRetailCrm};
use svyazka_testkit::telegram::TgUser;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(20);

/// Product names and API terms that stay Latin in the Russian UI.
const ALLOWED: &[&str] = &[
    "RetailCRM",
    "WhatsApp",
    "Telegram",
    "ChatAPI",
    "apiKey",
    "URL",
    "API",
    "HTTP",
    "HTTPS",
    "POST",
    "Bot",
    "getUpdates",
    "MG",
    "htmx",
    "Svyazka",
    "BotFather",
    // Green-API's and Meta's own names for what their consoles show.
    "Green",
    "idInstance",
    "apiTokenInstance",
    "apiUrl",
    "Meta",
    "Cloud",
    "Business",
    "Phone",
    "number",
    "ID",
    "App",
    "Secret",
    "Verify",
    "Token",
    // Key names in the editor's hints.
    "Enter",
    "Shift",
    // The language switch.
    "RU",
    "EN",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lang {
    Ru,
    En,
}

/// What the test types, in the language of the run (user data never trips the check).
struct Names {
    site: &'static str,
    crm: &'static str,
    wa: &'static str,
    tg: &'static str,
    flow1: &'static str,
    flow2: &'static str,
    to_telegram: &'static str,
    unknown_contact: &'static str,
    incomplete: &'static str,
    customer: &'static str,
    message: &'static str,
    greeting: &'static str,
    broken: &'static str,
    refusal: &'static str,
}

const RU: Names = Names {
    site: "Мой магазин",
    crm: "Магазин в РетейлЦРМ",
    wa: "Ватсап магазина",
    tg: "Бот магазина",
    flow1: "Сообщения в сделки",
    flow2: "Заказ в доставке",
    to_telegram: "Копия в бот",
    unknown_contact: "Сделка без контакта",
    incomplete: "Недописанная связка",
    customer: "Анна",
    message: "Хочу заказать диван",
    greeting: "Здравствуйте, {{ first_name }}! Заказ №{{ number }} передан в доставку.",
    broken: "Здравствуйте, {{ first_name ",
    refusal: "Номер не зарегистрирован в мессенджере",
};

const EN: Names = Names {
    site: "My shop",
    crm: "Shop CRM",
    wa: "Shop WhatsApp",
    tg: "Shop bot",
    flow1: "Messages to deals",
    flow2: "Order shipped",
    to_telegram: "Copy to the bot",
    unknown_contact: "Deal without contact",
    incomplete: "Unfinished bundle",
    customer: "Anna",
    message: "I would like to order a sofa",
    greeting: "Hello, {{ first_name }}! Order {{ number }} is on its way.",
    broken: "Hello, {{ first_name ",
    refusal: "The number is not registered in the messenger",
};

// ---------------------------------------------------------------------------------------------
// The check

fn cut_elements(html: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        out.push(' ');
        match rest[start..].find(close) {
            Some(end) => rest = &rest[start + end + close.len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Values of the attributes a user reads (tooltips, labels, confirmations, chip labels).
fn read_attributes(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in [
        "title=\"",
        "aria-label=\"",
        "placeholder=\"",
        "hx-confirm=\"",
        "data-unsaved=\"",
        "data-insert-label=\"",
        "onsubmit=\"return confirm('",
        "data-vars=\"",
    ] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            let from = at + attr.len();
            let end = if attr.ends_with('\'') { '\'' } else { '"' };
            let Some(len) = rest[from..].find(end) else {
                break;
            };
            out.push(unescape(&rest[from..from + len]));
            rest = &rest[from + len..];
        }
    }
    out
}

/// The text of an HTML page as it reads, without code and quoted upstream text.
fn visible_text(html: &str) -> String {
    let mut s = html.to_string();
    for (open, close) in [
        ("<script", "</script>"),
        ("<style", "</style>"),
        ("<pre", "</pre>"),
        ("<code", "</code>"),
        ("<q class=\"upstream\"", "</q>"),
    ] {
        s = cut_elements(&s, open, close);
    }
    let attrs = read_attributes(&s);
    let mut text = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let mut all = unescape(&text);
    for a in attrs {
        all.push_str(" \n ");
        all.push_str(&a);
    }
    all
}

/// Plain-text answers quote the upstream with «…».
fn plain_text(body: &str) -> String {
    cut_elements(body, "«", "»")
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}')
}

/// A token that is an English word (letters only, maybe with an apostrophe); ids, addresses,
/// codes and numbers are not words.
fn latin_word(token: &str) -> Option<&str> {
    let w = token.trim_matches(|c: char| {
        !c.is_alphanumeric() && !matches!(c, '_' | '-' | '/' | '@' | '=' | '{' | '}' | '%' | '.')
    });
    let w = w.trim_end_matches(['.', '-']);
    let body = w.strip_suffix("'s").unwrap_or(w);
    (!body.is_empty() && body.chars().all(|c| c.is_ascii_alphabetic())).then_some(w)
}

/// Two or more English words in a row (product terms neither count nor break a run).
fn english_runs(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut run: Vec<&str> = Vec::new();
    let flush = |run: &mut Vec<&str>, found: &mut Vec<String>| {
        if run.len() >= 2 {
            found.push(run.join(" "));
        }
        run.clear();
    };
    for token in text.split_whitespace() {
        match latin_word(token) {
            Some(w) if ALLOWED.contains(&w) => {}
            Some(w) => run.push(w),
            None => flush(&mut run, &mut found),
        }
    }
    flush(&mut run, &mut found);
    found
}

fn cyrillic_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|t| t.chars().any(is_cyrillic))
        .map(str::to_string)
        .collect()
}

fn problems(lang: Lang, text: &str, data: &[String]) -> Vec<String> {
    let mut text = text.to_string();
    // Longest first, so a name containing another is removed whole.
    let mut data: Vec<&String> = data.iter().collect();
    data.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for d in data {
        text = text.replace(d.as_str(), " ");
    }
    match lang {
        Lang::Ru => english_runs(&text),
        Lang::En => cyrillic_words(&text),
    }
}

#[test]
fn the_check_catches_what_it_should() {
    let ru = visible_text(
        "<p title=\"Check again\">Ключ неверен: <q class=\"upstream\">Wrong \"apiKey\" value.</q></p>\
         <pre>type=order&amp;status={{ x }}</pre><p>Адрес RetailCRM API: https://shop.retailcrm.ru</p>",
    );
    assert_eq!(english_runs(&ru), ["Check again"]);
    assert_eq!(
        english_runs("Ошибка: template syntax: unexpected end of input"),
        ["template syntax unexpected end of input"]
    );
    assert!(english_runs("Бот Telegram (токен от @BotFather), WhatsApp (ChatAPI)").is_empty());
    assert_eq!(
        problems(Lang::En, "Store: Мой магазин, шаг", &["Мой магазин".into()]),
        ["шаг"]
    );
    assert_eq!(plain_text("Ответ: «Not found» и всё"), "Ответ:   и всё");
}

// ---------------------------------------------------------------------------------------------
// The walk

struct Walk<'a> {
    app: &'a TestApp,
    lang: Lang,
    /// Texts the test or the upstream's account put in (excluded from the check).
    data: Vec<String>,
    failures: Vec<String>,
    pages: usize,
}

impl<'a> Walk<'a> {
    fn check(&mut self, what: &str, status: u16, content_type: &str, body: &str) {
        self.pages += 1;
        let text = if content_type.starts_with("text/html") {
            visible_text(body)
        } else {
            plain_text(body)
        };
        let found = problems(self.lang, &text, &self.data);
        if !found.is_empty() {
            self.failures
                .push(format!("{what} ({status}): {}", found.join(" | ")));
        }
    }

    /// A request the admin's input made impossible answers 4xx, never 500.
    fn expect_user_error(&mut self, what: &str, status: u16) {
        if !(400..500).contains(&status) {
            self.failures.push(format!(
                "{what}: answered {status}, not a 4xx with the reason"
            ));
        }
    }

    async fn read(&mut self, what: &str, r: reqwest::Response) -> (u16, String) {
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = r.text().await.unwrap();
        self.check(what, status, &content_type, &body);
        (status, body)
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self.app.get(path).await;
        self.read(&format!("GET {path}"), r).await
    }

    async fn htmx_get(&mut self, path: &str) -> (u16, String) {
        let r = self
            .app
            .client
            .get(self.app.url(path))
            .header("HX-Request", "true")
            .send()
            .await
            .unwrap();
        self.read(&format!("htmx GET {path}"), r).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        self.post_from("/providers", path, fields).await
    }

    /// POST with the CSRF token of `form_page`.
    async fn post_from(
        &mut self,
        form_page: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let r = self.app.submit(form_page, path, fields).await;
        self.read(&format!("POST {path}"), r).await
    }

    async fn htmx_post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let token = self.app.csrf("/providers").await;
        let r = self
            .app
            .client
            .post(self.app.url(path))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", token)
            .form(fields)
            .send()
            .await
            .unwrap();
        self.read(&format!("htmx POST {path}"), r).await
    }

    /// Through the two wizard steps; returns the new bundle's id.
    async fn wizard(&mut self, source: i64, target: i64, event: &str, action: &str) -> i64 {
        self.get(&format!("/bundles/new?source={source}&target={target}"))
            .await;
        let (status, _) = self
            .get(&format!(
                "/bundles/new/type?source={source}&target={target}"
            ))
            .await;
        assert_eq!(status, 200);
        let r = self
            .app
            .submit(
                "/bundles/new",
                "/bundles/new",
                &[
                    ("source", &source.to_string()),
                    ("target", &target.to_string()),
                    ("event", event),
                    ("action", action),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        location.trim_start_matches("/bundles/").parse().unwrap()
    }

    async fn name_bundle(&mut self, id: i64, name: &str) {
        let (status, _) = self
            .htmx_post(&format!("/bundles/{id}/name"), &[("name", name)])
            .await;
        assert_eq!(status, 200);
    }
}

async fn set_steps(app: &TestApp, id: i64, steps: Vec<Step>) {
    app.core()
        .db(move |c| svyazka_core::bundles::set_steps(c, id, &steps))
        .await
        .unwrap();
}

fn lit(v: &str) -> Value {
    Value::Literal { value: v.into() }
}

struct LangFakes {
    crm: FakeRetailCrm,
    wa: svyazka_testkit::chatapi::FakeChatApi,
    tg: svyazka_testkit::telegram::FakeTelegram,
    crm_base: String,
    wa_base: String,
    tg_base: String,
    _running: Vec<svyazka_testkit::server::Running>,
}

/// The fakes of `support::Fakes`, with the store named in the run's language.
fn fakes(names: &Names) -> LangFakes {
    let (crm, r1) = FakeRetailCrm::start().expect("crm fake");
    crm.add_site("shop", names.site);
    crm.add_key(ApiKey::selective(CRM_KEY, &["shop"]));
    crm.set_rate_limit(None);
    let (wa, r2) = svyazka_testkit::chatapi::FakeChatApi::start().expect("chatapi fake");
    wa.add_instance(WA_INSTANCE, WA_TOKEN);
    let (tg, r3) = svyazka_testkit::telegram::FakeTelegram::start().expect("telegram fake");
    tg.add_bot(TG_TOKEN, "svyazka_test_bot");
    LangFakes {
        crm_base: r1.base_url(),
        wa_base: format!("{}/instance{WA_INSTANCE}", r2.base_url()),
        tg_base: r3.base_url(),
        crm,
        wa,
        tg,
        _running: vec![r1, r2, r3],
    }
}

/// The account's statuses and groups: upstream data, shown as RetailCRM names them.
fn account_statuses() -> Vec<String> {
    [
        "Новый",
        "Согласование",
        "Комплектация",
        "Доставка",
        "Выполнен",
        "Отменен",
        "Наличие подтверждено",
        "Предложить замену",
        "Согласовано с клиентом",
        "Предоплата поступила",
        "Передано в комплектацию",
        "Комплектуется",
        "Укомплектован",
        "Передан в доставку",
        "Доставляется",
        "Доставка перенесена",
        "Недозвон",
        "Нет в наличии",
        "Купил в другом месте",
        "Не устроила доставка",
        "Не устроила цена",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn walk(backend: Backend, lang: Lang) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let names = match lang {
        Lang::Ru => &RU,
        Lang::En => &EN,
    };
    let mut w = Walk {
        app: &app,
        lang,
        data: Vec::new(),
        failures: Vec::new(),
        pages: 0,
    };
    if lang == Lang::En {
        w.data = account_statuses();
        app.get("/lang/en").await;
    }
    for n in [
        names.site,
        names.crm,
        names.wa,
        names.tg,
        names.flow1,
        names.flow2,
        names.to_telegram,
        names.unknown_contact,
        names.incomplete,
        names.customer,
        names.message,
        names.refusal,
    ] {
        w.data.push(n.to_string());
    }
    let f = fakes(names);

    // First start and sign-in.
    w.get("/setup").await;
    let (status, _) = w
        .post_from(
            "/setup",
            "/setup",
            &[
                ("username", "ab"),
                ("password", "short"),
                ("password_repeat", "other"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = w
        .post_from(
            "/setup",
            "/setup",
            &[
                ("setup_code", "not-the-code"),
                ("username", ADMIN),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 403, "a wrong set-up code");
    app.setup_admin().await;
    app.logout().await;
    let (status, _) = w
        .post_from(
            "/login",
            "/setup",
            &[
                ("setup_code", "any"),
                ("username", "second"),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ],
        )
        .await;
    assert_eq!(status, 403, "set-up once an administrator exists");
    w.get("/login").await;
    let (status, _) = w
        .post_from(
            "/login",
            "/login",
            &[("username", ADMIN), ("password", "wrong password")],
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.login().await.status().as_u16(), 303);

    // Providers: the empty list, the forms, every refusal a new user meets.
    w.get("/providers").await;
    w.get("/providers/new").await;
    for kind in ["retailcrm", "chatapi", "greenapi", "wacloud", "telegram"] {
        w.get(&format!("/providers/new/{kind}")).await;
    }
    for domain in [
        "",
        "shop with spaces",
        "http://shop.retailcrm.ru",
        "https://shop.retailcrm.ru/api/v5",
        "shop",
    ] {
        w.htmx_get(&format!(
            "/providers/normalize?domain={}",
            url::form_urlencoded::byte_serialize(domain.as_bytes()).collect::<String>()
        ))
        .await;
    }
    let crm_new = "/providers/new/retailcrm";
    for fields in [
        vec![
            ("name", "Shop"),
            ("domain", f.crm_base.as_str()),
            ("api_key", CRM_KEY),
        ],
        vec![
            ("name", names.crm),
            ("domain", "shop with spaces"),
            ("api_key", CRM_KEY),
        ],
        vec![
            ("name", names.crm),
            ("domain", "https://10.0.0.5"),
            ("api_key", CRM_KEY),
        ],
        vec![
            ("name", names.crm),
            ("domain", "http://127.0.0.1:9"),
            ("api_key", CRM_KEY),
        ],
        vec![
            ("name", names.crm),
            ("domain", f.crm_base.as_str()),
            ("api_key", ""),
        ],
        vec![
            ("name", names.crm),
            ("domain", f.crm_base.as_str()),
            ("api_key", "wrong"),
        ],
    ] {
        let (status, _) = w.post(crm_new, &fields).await;
        assert_eq!(status, 422, "{fields:?}");
    }
    f.crm.add_key(ApiKey::full("all-stores-key"));
    f.crm
        .add_key(ApiKey::selective("no-api-key", &["shop"]).with_api_enabled(false));
    f.crm
        .add_key(ApiKey::selective("no-chats-key", &["shop"]).with_chats_enabled(false));
    f.crm.add_key(
        ApiKey::selective("few-scopes-key", &["shop"])
            .with_scopes(&["order_read", "customer_read"]),
    );
    for key in [
        "all-stores-key",
        "no-api-key",
        "no-chats-key",
        "few-scopes-key",
    ] {
        let (status, _) = w
            .post(
                crm_new,
                &[
                    ("name", names.crm),
                    ("domain", &f.crm_base),
                    ("api_key", key),
                ],
            )
            .await;
        assert_eq!(status, 422, "{key}");
    }
    for (kind, fields) in [
        (
            "chatapi",
            vec![("name", names.wa), ("api_url", ""), ("token", "")],
        ),
        (
            "chatapi",
            vec![
                ("name", names.wa),
                ("api_url", f.wa_base.as_str()),
                ("token", "bad"),
            ],
        ),
        (
            "chatapi",
            vec![
                ("name", names.wa),
                ("api_url", "http://127.0.0.1:9/instance1"),
                ("token", WA_TOKEN),
            ],
        ),
        (
            "telegram",
            vec![
                ("name", names.tg),
                ("api_url", f.tg_base.as_str()),
                ("token", ""),
            ],
        ),
        (
            "telegram",
            vec![
                ("name", names.tg),
                ("api_url", f.tg_base.as_str()),
                ("token", "999:nope"),
            ],
        ),
    ] {
        let (status, _) = w.post(&format!("/providers/new/{kind}"), &fields).await;
        assert_eq!(status, 422, "{kind} {fields:?}");
    }
    let crm = app
        .add_provider(
            "retailcrm",
            &[
                ("name", names.crm),
                ("domain", &f.crm_base),
                ("api_key", CRM_KEY),
            ],
        )
        .await;
    let wa = app
        .add_provider(
            "chatapi",
            &[
                ("name", names.wa),
                ("api_url", &f.wa_base),
                ("token", WA_TOKEN),
            ],
        )
        .await;
    let tg = app
        .add_provider(
            "telegram",
            &[
                ("name", names.tg),
                ("api_url", &f.tg_base),
                ("token", TG_TOKEN),
            ],
        )
        .await;
    w.get("/providers").await;
    for id in [crm, wa, tg] {
        w.get(&format!("/providers/{id}")).await;
        w.get(&format!("/providers/{id}/edit")).await;
    }
    // A new address needs the secret typed again, for each kind.
    for (id, fields) in [
        (
            crm,
            vec![
                ("name", names.crm),
                ("domain", "https://other-shop.retailcrm.ru"),
                ("api_key", ""),
            ],
        ),
        (
            wa,
            vec![
                ("name", names.wa),
                ("api_url", "https://api.1msg.io/1102"),
                ("token", ""),
            ],
        ),
        (
            tg,
            vec![
                ("name", names.tg),
                ("api_url", "https://api.telegram.example"),
                ("token", ""),
            ],
        ),
    ] {
        let edit = format!("/providers/{id}/edit");
        let (status, _) = w.post_from(&edit, &edit, &fields).await;
        assert_eq!(status, 422, "{fields:?}");
    }
    let (status, _) = w.post(&format!("/providers/{wa}/rotate"), &[]).await;
    assert_eq!(status, 303);
    w.get(&format!("/providers/{wa}")).await;

    // Bundles: the wizard, both guide flows, a refused Start, a broken template.
    w.get("/bundles").await;
    w.get("/bundles/new").await;
    let (status, _) = w
        .get(&format!("/bundles/new/type?source={wa}&target="))
        .await;
    assert_eq!(status, 422);
    let r = app
        .submit(
            "/bundles/new",
            "/bundles/new",
            &[
                ("source", &wa.to_string()),
                ("target", &crm.to_string()),
                ("action", "bogus"),
            ],
        )
        .await;
    let (status, _) = w.read("POST /bundles/new (no such action)", r).await;
    assert_eq!(status, 422);

    let flow1 = w.wizard(wa, crm, "incoming_message", "new_contact").await;
    set_steps(&app, flow1, flow1_steps()).await;
    w.name_bundle(flow1, names.flow1).await;
    let (status, _) = w.htmx_post(&format!("/bundles/{flow1}/start"), &[]).await;
    assert_eq!(status, 200);
    w.get(&format!("/bundles/{flow1}")).await;

    let unknown_contact = w.wizard(wa, crm, "incoming_message", "new_deal").await;
    set_steps(
        &app,
        unknown_contact,
        vec![step(
            "new_deal",
            vec![
                ("phone", event_field("sender_id")),
                ("contact_id", lit("999999")),
                ("only_if_no_open_deal", lit("false")),
            ],
        )],
    )
    .await;
    w.name_bundle(unknown_contact, names.unknown_contact).await;
    w.htmx_post(&format!("/bundles/{unknown_contact}/start"), &[])
        .await;

    let flow2 = w.wizard(crm, wa, "new_deal", "send_message").await;
    w.name_bundle(flow2, names.flow2).await;
    let editor = format!("/bundles/{flow2}");
    w.get(&editor).await;
    // Start refused: htmx gets the run bar, a plain form the page.
    let (status, _) = w.htmx_post(&format!("{editor}/start"), &[]).await;
    assert_eq!(status, 200);
    let (status, _) = w.post(&format!("{editor}/start"), &[]).await;
    assert_eq!(status, 422);
    // A template with a syntax error, then one with an unknown parameter.
    for tpl in [names.broken, "{{ first_name }} {% if %}", "{{ firstname }}"] {
        w.htmx_post(
            &format!("{editor}/steps/0"),
            &[
                ("recipient.src", "event:phone"),
                ("text.src", "tpl"),
                ("text.tpl", tpl),
            ],
        )
        .await;
        w.htmx_post(
            &format!("{editor}/steps/0/preview?param=text"),
            &[("text.tpl", tpl)],
        )
        .await;
        w.get(&editor).await;
    }
    // «Новая сделка» with no status cannot start; the guide's flow 2 fires on any new order.
    w.htmx_post(&format!("{editor}/statuses"), &[("any_status", "1")])
        .await;
    w.htmx_post(&format!("{editor}/start"), &[]).await;
    w.htmx_post(
        &format!("{editor}/steps/0"),
        &[
            ("recipient.src", "event:phone"),
            ("text.src", "tpl"),
            ("text.tpl", names.greeting),
        ],
    )
    .await;
    w.htmx_post(
        &format!("{editor}/steps/0/preview?param=text"),
        &[("text.tpl", names.greeting)],
    )
    .await;
    // The status selector: fragment, page, save, refresh.
    w.htmx_get(&format!("{editor}/statuses")).await;
    w.get(&format!("{editor}/statuses")).await;
    w.htmx_post(
        &format!("{editor}/statuses"),
        &[("status", "new"), ("status", "gone-status")],
    )
    .await;
    w.htmx_post(&format!("{editor}/statuses/refresh"), &[])
        .await;
    w.htmx_post(&format!("{editor}/statuses"), &[]).await;
    w.htmx_post(&format!("{editor}/statuses"), &[("any_status", "1")])
        .await;
    // The name: refused empty, both ways.
    w.htmx_post(&format!("{editor}/name"), &[("name", "   ")])
        .await;
    let (status, _) = w.post(&format!("{editor}/name"), &[("name", "   ")]).await;
    assert_eq!(status, 422);
    // The chain: add, move, remove, an action the target does not have.
    w.htmx_post(&format!("{editor}/steps"), &[("action", "send_message")])
        .await;
    w.htmx_post(&format!("{editor}/steps/1/move"), &[("dir", "up")])
        .await;
    w.htmx_post(&format!("{editor}/steps/0/move"), &[("dir", "down")])
        .await;
    w.htmx_post(&format!("{editor}/steps/1/delete"), &[]).await;
    let (status, _) = w
        .htmx_post(&format!("{editor}/steps"), &[("action", "new_contact")])
        .await;
    w.expect_user_error("an action the target has not", status);
    let (status, _) = w
        .post(&format!("{editor}/steps"), &[("action", "bogus")])
        .await;
    w.expect_user_error("an unknown action", status);
    let (status, _) = w
        .htmx_post(&format!("{editor}/steps/7/move"), &[("dir", "up")])
        .await;
    w.expect_user_error("moving a step that is not there", status);
    let (status, _) = w.htmx_post(&format!("{editor}/start"), &[]).await;
    assert_eq!(status, 200);
    w.get(&editor).await;

    let to_telegram = w.wizard(crm, tg, "new_deal", "send_message").await;
    set_steps(
        &app,
        to_telegram,
        vec![step(
            "send_message",
            vec![
                ("chat_id", lit("5000000002")),
                ("text", template(names.greeting)),
            ],
        )],
    )
    .await;
    w.name_bundle(to_telegram, names.to_telegram).await;
    w.htmx_post(
        &format!("/bundles/{to_telegram}/statuses"),
        &[("any_status", "1")],
    )
    .await;
    w.htmx_post(&format!("/bundles/{to_telegram}/start"), &[])
        .await;

    let incomplete = w
        .wizard(crm, tg, "deal_status_changed", "send_message")
        .await;
    w.name_bundle(incomplete, names.incomplete).await;
    w.get(&format!("/bundles/{incomplete}")).await;
    w.get("/bundles").await;

    // Runs: one succeeds, the others fail in every way a run fails.
    let anna = TgUser::new(5_000_000_001, names.customer);
    f.tg.user_writes(TG_TOKEN, &anna, "/start").await.unwrap();
    f.wa.post_incoming(
        &app.hook_url(wa).await,
        "79991234567",
        names.customer,
        names.message,
    )
    .await
    .unwrap();
    app.settled_runs(2, SETTLE).await;
    f.wa.refuse_sends(WA_INSTANCE, Some(names.refusal)).unwrap();
    let hook = app.hook_url(crm).await;
    f.crm
        .create_order_and_fire(
            &hook,
            "shop",
            json!({"status": "new", "firstName": names.customer, "phone": "+7 999 111-22-33"}),
        )
        .await
        .unwrap();
    app.settled_runs(4, SETTLE).await;
    f.wa.refuse_sends(WA_INSTANCE, None).unwrap();
    f.crm
        .create_order_and_fire(
            &hook,
            "shop",
            json!({"status": "new", "firstName": names.customer, "phone": "12345"}),
        )
        .await
        .unwrap();
    let runs = app.settled_runs(6, SETTLE).await;
    assert!(runs.iter().any(|r| r.status == "failed"));
    assert!(runs.iter().any(|r| r.status == "succeeded"));
    // Operators answer in RetailCRM's chat: one reply delivered, one the gateway refuses.
    let (reply, refused_reply) = match lang {
        Lang::Ru => ("Диван привезём завтра", "Диван привезём в среду"),
        Lang::En => ("The sofa comes tomorrow", "The sofa comes on Wednesday"),
    };
    w.data
        .extend([reply.to_string(), refused_reply.to_string()]);
    let incoming = f
        .crm
        .mg_messages()
        .into_iter()
        .find(|m| m.text == names.message && m.originator == "customer")
        .expect("the customer's message in RetailCRM's chat");
    let customer = incoming.customer_external_id.clone().unwrap();
    f.crm
        .operator_reply(incoming.channel_id, &customer, reply)
        .await
        .unwrap();
    f.wa.refuse_sends(WA_INSTANCE, Some(names.refusal)).unwrap();
    f.crm
        .operator_reply(incoming.channel_id, &customer, refused_reply)
        .await
        .unwrap();
    let core = app.core().clone();
    let settled = eventually(SETTLE, || {
        let core = core.clone();
        async move {
            let replies = core
                .db(|c| svyazka_core::replies::recent(c, 10))
                .await
                .ok()?;
            let done =
                |r: &svyazka_core::replies::Reply| matches!(r.status.as_str(), "sent" | "failed");
            (replies.len() == 2 && replies.iter().all(done)).then_some(())
        }
    })
    .await;
    assert!(settled.is_some(), "both replies settle");
    f.wa.refuse_sends(WA_INSTANCE, None).unwrap();
    w.get("/runs").await;
    w.get("/replies").await;
    w.get("/runs?status=failed").await;
    w.get("/runs?status=bogus&from=yesterday&to=2026-13-45&bundle_id=abc&page=zero")
        .await;
    w.get(&format!("/runs?bundle_id={flow2}")).await;
    for r in &runs {
        w.get(&format!("/runs/{}", r.id)).await;
    }
    // The events behind them, with each outcome.
    w.get("/events").await;
    w.get("/events?outcome=failed&provider_id=abc").await;
    for r in &runs {
        w.get(&format!("/events/{}", r.inbox_id)).await;
    }
    let done = runs.iter().find(|r| r.status == "succeeded").unwrap();
    let (status, _) = w.post(&format!("/runs/{}/replay", done.id), &[]).await;
    assert_eq!(status, 409);
    let (status, _) = w.post(&format!("/runs/{}/skip", done.id), &[]).await;
    assert_eq!(status, 409);
    let failed = runs.iter().find(|r| r.status == "failed").unwrap();
    let (status, _) = w.post(&format!("/runs/{}/skip", failed.id), &[]).await;
    assert_eq!(status, 303);
    w.get(&format!("/runs/{}", failed.id)).await;
    w.get("/bundles").await;
    // The test event: an order that exists, one that does not, and no number at all.
    let sample = format!("/providers/{crm}/test-event");
    for order in ["1", "987654", "abc"] {
        w.post(&sample, &[("order_id", order), ("event", "new")])
            .await;
    }
    // A bundle deleted.
    let (status, _) = w.post(&format!("/bundles/{incomplete}/delete"), &[]).await;
    assert_eq!(status, 303);
    w.get("/bundles").await;

    // Error pages.
    for path in [
        "/no-such-page",
        "/runs/987654",
        "/bundles/987654",
        "/providers/987654",
        "/providers/abc",
        "/providers/new/bogus",
        "/bundles/987654/statuses",
    ] {
        let (status, _) = w.get(path).await;
        if status != 404 {
            w.failures.push(format!("GET {path}: {status}, not 404"));
        }
    }
    let r = app.post_form(&format!("/bundles/{flow2}/stop"), &[]).await;
    let (status, _) = w.read("POST without a CSRF token", r).await;
    assert_eq!(status, 403);
    let (status, _) = w
        .post("/bundles/new", &[("source", "abc"), ("target", "1")])
        .await;
    assert_eq!(status, 400, "an unreadable form");

    // Provider checks that fail later: the provider is in use, the plan lost its API, the
    // account is gone (the status selector says so too), the bot is taken by a webhook.
    let (status, _) = w.post(&format!("/providers/{crm}/delete"), &[]).await;
    assert_eq!(status, 409);
    f.crm.set_api_enabled(CRM_KEY, false);
    w.post(&format!("/providers/{crm}/check"), &[]).await;
    w.get(&format!("/providers/{crm}")).await;
    f.crm.set_api_enabled(CRM_KEY, true);
    f.crm.set_account_exists(false);
    w.htmx_post(&format!("{editor}/statuses/refresh"), &[])
        .await;
    w.get(&format!("{editor}/statuses")).await;
    w.post(&format!("/providers/{crm}/check"), &[]).await;
    w.get(&format!("/providers/{crm}")).await;
    w.get("/providers").await;
    f.wa.set_not_paid(WA_INSTANCE).unwrap();
    w.post(&format!("/providers/{wa}/check"), &[]).await;
    w.get(&format!("/providers/{wa}")).await;
    // The fake listens on loopback http: a client with the development policy, as the app has.
    let bot = svyazka_core::messengers::telegram::Telegram::with_client(
        app.core().http.clone(),
        &f.tg_base,
        TG_TOKEN,
    )
    .unwrap();
    bot.set_webhook("http://127.0.0.1:9/elsewhere", "")
        .await
        .unwrap();
    let page = format!("/providers/{tg}");
    let shown = eventually(SETTLE, || async {
        let html = app.get_html(&page).await.1;
        html.contains("badge error").then_some(())
    })
    .await;
    assert!(shown.is_some(), "the polling failure is shown");
    w.get(&page).await;
    w.get("/providers").await;
    // The overview (workers, waiting work) and the account page.
    w.get("/").await;
    w.get("/account").await;
    let new_password = "another long password";
    for (current, new, repeat) in [
        ("wrong password", new_password, new_password),
        (PASSWORD, "short", "short"),
        (PASSWORD, new_password, "something else"),
    ] {
        let (status, _) = w
            .post_from(
                "/account",
                "/account/password",
                &[("current", current), ("new", new), ("repeat", repeat)],
            )
            .await;
        assert_eq!(status, 422, "{current} {new} {repeat}");
    }
    let (status, _) = w
        .post_from(
            "/account",
            "/account/password",
            &[
                ("current", PASSWORD),
                ("new", new_password),
                ("repeat", new_password),
            ],
        )
        .await;
    assert_eq!(status, 303);
    w.get("/account?done=password").await;

    app.logout().await;
    // Guessing goes on until sign-in refuses for a while.
    let mut throttled = false;
    for _ in 0..12 {
        let (status, _) = w
            .post_from(
                "/login",
                "/login",
                &[("username", ADMIN), ("password", "a guess")],
            )
            .await;
        if status == 429 {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "sign-in is throttled");
    let failures = std::mem::take(&mut w.failures);
    let pages = w.pages;
    app.stop().await;
    assert!(
        failures.is_empty(),
        "{lang:?}: {} of {pages} answers are not in the admin's language:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

both_backends!(russian_pages_have_no_english, |backend| walk(
    backend,
    Lang::Ru
));
both_backends!(english_pages_have_no_russian, |backend| walk(
    backend,
    Lang::En
));
