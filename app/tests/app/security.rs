//! Security checks as tests: sessions, CSRF, secrets never in clear text.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

const ADMIN_GETS: &[&str] = &[
    "/",
    "/providers",
    "/providers/new",
    "/providers/new/retailcrm",
    "/providers/1",
    "/providers/1/edit",
    "/providers/normalize?domain=shop",
    "/bundles",
    "/bundles/new",
    "/bundles/1",
    "/runs",
    "/runs/1",
];

const ADMIN_POSTS: &[&str] = &[
    "/logout",
    "/providers/new/retailcrm",
    "/providers/1/edit",
    "/providers/1/check",
    "/providers/1/rotate",
    "/providers/1/delete",
    "/bundles/new",
    "/bundles/1/start",
    "/bundles/1/stop",
    "/bundles/1/delete",
    "/runs/1/replay",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_route_needs_a_session_and_every_form_a_csrf_token() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.setup_admin().await;
    app.logout().await;
    for path in ADMIN_GETS {
        let r = app.get(path).await;
        assert_eq!(r.status().as_u16(), 303, "GET {path} without a session");
        assert_eq!(r.headers()["location"], "/login", "GET {path}");
    }
    for path in ADMIN_POSTS {
        let r = app.post_form(path, &[("name", "x")]).await;
        assert!(
            matches!(r.status().as_u16(), 303 | 401),
            "POST {path} without a session: {}",
            r.status()
        );
    }
    let r = app
        .client
        .get(app.url("/providers"))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "htmx requests get 401 with HX-Redirect"
    );
    assert_eq!(r.headers()["hx-redirect"], "/login");

    // Signed in, but without the token: every form is refused.
    assert_eq!(app.login().await.status().as_u16(), 303);
    for path in ADMIN_POSTS {
        let r = app.post_form(path, &[("name", "x")]).await;
        assert_eq!(r.status().as_u16(), 403, "POST {path} without a CSRF token");
    }
    app.stop().await;
}

/// The real binary with debug logging on SQLite in `dir`, signed in: its process, a client
/// for it, and where it logs.
async fn spawn_binary(dir: &std::path::Path) -> (std::process::Child, TestApp, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.join("app.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_svyazka"))
        .env("SVYAZKA_DATA_DIR", dir.join("data"))
        .env("SVYAZKA_BIND", format!("127.0.0.1:{port}"))
        .env("SVYAZKA_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("RUST_LOG", "debug")
        .env("SVYAZKA_POLL_MS", "20")
        .env("SVYAZKA_DEV_ALLOW_LOOPBACK", "true")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = eventually(Duration::from_secs(20), || async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
    assert!(up.is_some(), "binary started");
    let app = TestApp {
        base: base.clone(),
        client: client(),
        running: None,
        db: TestDb::new(Backend::Sqlite).unwrap(),
    };
    app.setup_admin_with_code(&read_setup_code(&dir.join("data")))
        .await;
    (child, app, log_path)
}

/// The bytes of the SQLite database files (with the WAL) in `dir`.
fn database_files(dir: &std::path::Path) -> Vec<u8> {
    let mut db = Vec::new();
    for entry in std::fs::read_dir(dir.join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("svyazka.db"))
        {
            db.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!db.is_empty());
    db
}

/// Runs the real binary with debug logging, connects all three provider kinds, runs a flow,
/// then looks for the keys in the HTML, the logs and the database files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_html_logs_or_the_database() {
    let fakes = Fakes::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, app, log_path) = spawn_binary(dir.path()).await;
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    let tg = app.add_telegram(&fakes).await;
    let mut html = String::new();
    for id in [crm, wa, tg] {
        html += &app.get_html(&format!("/providers/{id}")).await.1;
        html += &app.get_html(&format!("/providers/{id}/edit")).await.1;
    }
    html += &app.get_html("/providers").await.1;
    child.kill().unwrap();
    let _ = child.wait();

    let logs = std::fs::read(&log_path).unwrap();
    let db = database_files(dir.path());
    for secret in [CRM_KEY, WA_TOKEN, TG_TOKEN] {
        assert!(!html.contains(secret), "{secret} in HTML");
        assert!(!contains(&logs, secret.as_bytes()), "{secret} in the logs");
        assert!(
            !contains(&db, secret.as_bytes()),
            "{secret} in the database files"
        );
    }
}

/// The same for the WhatsApp Cloud API (access token, app secret, verify token) and Green-API
/// (apiTokenInstance, the webhook token): both connected, their webhooks delivered and Meta's
/// handshake answered, then the keys looked for in the pages, the logs and the database files.
/// The verify token is shown on the provider page by design (Meta's dashboard asks for it),
/// so only the edit page must mask it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_secrets_never_appear_in_html_logs_or_the_database() {
    use crate::greenapi::{INSTANCE, TOKEN as GREEN_TOKEN, add_green, green};
    use crate::wacloud::{APP_SECRET, PHONE_ID, TOKEN as CLOUD_TOKEN, add_cloud, cloud};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, app, log_path) = spawn_binary(dir.path()).await;
    let g = green();
    let c = cloud();
    let gid = add_green(&app, &g).await;
    let cid = add_cloud(&app, &c).await;
    let hook_token = g.fake.settings(INSTANCE).unwrap()["webhookUrlToken"]
        .as_str()
        .unwrap()
        .to_string();
    // The binary runs apart from the test: the callback URL and the verify token are read
    // where the admin copies them from.
    let cloud_page = app.get_html(&format!("/providers/{cid}")).await.1;
    let copied = |id: &str| {
        let open = format!(r#"<pre id="{id}">"#);
        let start = cloud_page.find(&open).map(|i| i + open.len()).expect(id);
        let len = cloud_page[start..].find("</pre>").expect(id);
        cloud_page[start..start + len].to_string()
    };
    let cloud_hook = copied("hook-url");
    let verify_token = copied("verify-token");
    assert!(verify_token.len() >= 16, "{verify_token}");
    // Webhooks in, with their credentials: Green-API's Authorization header, Meta's signature
    // and the verify token in the handshake's query.
    assert_eq!(
        g.fake
            .post_incoming(INSTANCE, "79991234567", "Иван", "Привет")
            .await
            .unwrap(),
        200
    );
    assert_eq!(
        c.fake
            .post_incoming(
                &cloud_hook,
                APP_SECRET,
                PHONE_ID,
                "79991234567",
                "Иван",
                "Привет"
            )
            .await
            .unwrap(),
        200
    );
    assert_eq!(
        c.fake
            .verify(&cloud_hook, &verify_token, "42")
            .await
            .unwrap(),
        (200, "42".into())
    );
    let mut pages = String::new();
    for id in [gid, cid] {
        pages += &app.get_html(&format!("/providers/{id}")).await.1;
    }
    pages += &app.get_html("/providers").await.1;
    let mut edit = String::new();
    for id in [gid, cid] {
        let (status, html) = app.get_html(&format!("/providers/{id}/edit")).await;
        assert_eq!(status, 200);
        edit += &html;
    }
    child.kill().unwrap();
    let _ = child.wait();

    let logs = std::fs::read(&log_path).unwrap();
    let db = database_files(dir.path());
    let all = [
        GREEN_TOKEN,
        hook_token.as_str(),
        CLOUD_TOKEN,
        APP_SECRET,
        verify_token.as_str(),
    ];
    for secret in all {
        assert!(!edit.contains(secret), "{secret} on an edit page");
        assert!(!contains(&logs, secret.as_bytes()), "{secret} in the logs");
        assert!(
            !contains(&db, secret.as_bytes()),
            "{secret} in the database files"
        );
    }
    for secret in [GREEN_TOKEN, hook_token.as_str(), CLOUD_TOKEN, APP_SECRET] {
        assert!(!pages.contains(secret), "{secret} on a provider page");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[derive(diesel::QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Rows {
    #[diesel(sql_type = diesel::sql_types::Text)]
    body: String,
}

/// Every row of every table of a PostgreSQL database, as JSON text.
fn postgres_rows(url: &str) -> String {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(url).expect("test database");
    let tables: Vec<TableName> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .load(&mut conn)
    .expect("tables");
    assert!(tables.iter().any(|t| t.name == "providers"), "the schema");
    let mut all = String::new();
    for t in tables {
        let rows: Vec<Rows> = diesel::sql_query(format!(
            "SELECT coalesce(string_agg(to_jsonb(t)::text, ' '), '') AS body FROM \"{}\" t",
            t.name
        ))
        .load(&mut conn)
        .expect("rows");
        all.extend(rows.into_iter().map(|r| r.body));
    }
    all
}

/// The PostgreSQL side of the test above (the binary's logs are covered there): the WhatsApp
/// kinds' secrets, after webhooks and Meta's handshake, are in no row of any table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_secrets_are_not_stored_in_clear_in_postgres() {
    use crate::greenapi::{INSTANCE, TOKEN as GREEN_TOKEN, add_green, green};
    use crate::wacloud::{APP_SECRET, PHONE_ID, TOKEN as CLOUD_TOKEN, add_cloud, cloud};
    let Some(app) = TestApp::signed_in(Backend::Postgres).await else {
        return;
    };
    let g = green();
    let c = cloud();
    let gid = add_green(&app, &g).await;
    let cid = add_cloud(&app, &c).await;
    let hook_token = g.fake.settings(INSTANCE).unwrap()["webhookUrlToken"]
        .as_str()
        .unwrap()
        .to_string();
    let verify_token = match app.provider(cid).await.secrets(&app.core().crypto) {
        Ok(svyazka_core::providers::Secrets::Wacloud { verify_token, .. }) => verify_token,
        other => panic!("{other:?}"),
    };
    g.fake
        .post_incoming(INSTANCE, "79991234567", "Иван", "Привет")
        .await
        .unwrap();
    let hook = app.hook_url(cid).await;
    c.fake
        .post_incoming(&hook, APP_SECRET, PHONE_ID, "79991234567", "Иван", "Привет")
        .await
        .unwrap();
    c.fake.verify(&hook, &verify_token, "42").await.unwrap();
    assert!(app.inbox_count().await >= 2, "the webhooks were stored");
    let TestDb::Postgres { url, .. } = &app.db else {
        panic!("not PostgreSQL");
    };
    let rows = postgres_rows(url);
    assert!(rows.contains(&format!("\"id\": {gid}")), "rows were read");
    for secret in [
        GREEN_TOKEN,
        hook_token.as_str(),
        CLOUD_TOKEN,
        APP_SECRET,
        verify_token.as_str(),
    ] {
        assert!(!rows.contains(secret), "{secret} in the database");
    }
    app.stop().await;
}
