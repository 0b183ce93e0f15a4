//! The app on a public address (issue "Safe to put on the internet"): first-run setup code,
//! outbound calls refused to internal addresses, sessions that end on the server, sign-in
//! throttling that does not starve webhooks, template memory bombs, security headers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::json;

use crate::both_backends;
use crate::support::*;

/// A one-shot-per-connection HTTP server on loopback answering every request with `response`;
/// counts the connections it accepted.
struct Canned {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Canned {
    fn start(response: String) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8192];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Canned { port, hits }
    }

    /// Accepts connections and answers nothing useful; only counts.
    fn listener() -> Canned {
        Canned::start("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".into())
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---- 1. first-run setup ----

both_backends!(
    setup_needs_the_code_printed_at_start,
    |backend| async move {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        let data_dir = app.core().config.data_dir.clone();
        let code_file = svyazka_core::auth::setup_code::file_path(&data_dir);
        assert_eq!(mode(&code_file), 0o600, "the code file is private");
        assert_eq!(mode(&data_dir), 0o700, "the data directory is private");
        for file in std::fs::read_dir(&data_dir).unwrap() {
            let path = file.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        let code = app.setup_code();
        let form = |code: &'static str| {
            vec![
                ("setup_code", code),
                ("username", ADMIN),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ]
        };
        // Whoever reaches /setup first without the code gets nothing.
        let r = app.submit("/setup", "/setup", &form("")).await;
        assert_eq!(r.status().as_u16(), 403);
        assert!(r.text().await.unwrap().contains("setup-code"));
        let r = app
            .submit("/setup", "/setup", &form("ABCD-EFGH-JKMN"))
            .await;
        assert_eq!(r.status().as_u16(), 403);
        assert_eq!(app.get("/providers").await.headers()["location"], "/setup");

        // Two browsers with the right code, at the same moment: exactly one administrator.
        let second = TestApp {
            base: app.base.clone(),
            client: client(),
            running: None,
            db: TestDb::new(Backend::Sqlite).unwrap(),
        };
        let fields = |name: &'static str| {
            vec![
                ("setup_code", code.clone()),
                ("username", name.to_string()),
                ("password", PASSWORD.to_string()),
                ("password_repeat", PASSWORD.to_string()),
            ]
        };
        let (a_token, b_token) = (app.csrf("/setup").await, second.csrf("/setup").await);
        let post = |t: &TestApp, token: String, name: &'static str| {
            let mut all = vec![("csrf".to_string(), token)];
            all.extend(fields(name).into_iter().map(|(k, v)| (k.to_string(), v)));
            t.client.post(t.url("/setup")).form(&all).send()
        };
        let (a, b) = tokio::join!(
            post(&app, a_token, "first"),
            post(&second, b_token, "second")
        );
        let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [303, 403], "one setup wins");
        let admins: i64 = app
            .core()
            .db(|c| {
                svyazka_core::db::schema::admins::table
                    .count()
                    .get_result::<i64>(c)
                    .map_err(svyazka_core::db::DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(admins, 1);
        assert!(
            !code_file.exists(),
            "the code is removed once an admin exists"
        );
        // The schema itself refuses a second administrator.
        let inserted = app
            .core()
            .db(|c| {
                diesel::insert_into(svyazka_core::db::schema::admins::table)
                    .values((
                        svyazka_core::db::schema::admins::username.eq("sneaky"),
                        svyazka_core::db::schema::admins::password_hash.eq("x"),
                        svyazka_core::db::schema::admins::created_at.eq(svyazka_core::db::now()),
                    ))
                    .execute(c)
                    .map_err(svyazka_core::db::DbError::from)
            })
            .await;
        assert!(inserted.is_err(), "a second admin row violates the schema");
        app.stop().await;
    }
);

both_backends!(reset_password_from_the_command_line, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    // As the operator runs it on the server: the new password on standard input.
    let out = {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_svyazka"))
            .args(["admin", "reset-password"])
            .envs(app.db.vars())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"a brand new password\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(ADMIN), "names the administrator: {stdout}");
    // Every session ended; the old password no longer works, the new one does.
    assert_eq!(app.get("/providers").await.headers()["location"], "/login");
    assert_eq!(app.login().await.status().as_u16(), 401);
    let r = app
        .submit(
            "/login",
            "/login",
            &[("username", ADMIN), ("password", "a brand new password")],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    app.stop().await;
});

// ---- 4. outbound policy ----

async fn refused_field(app: &TestApp, kind: &str, fields: &[(&str, &str)], field: &str) -> String {
    let path = format!("/providers/new/{kind}");
    let r = app.submit(&path, &path, fields).await;
    let status = r.status().as_u16();
    let html = r.text().await.unwrap();
    assert_eq!(status, 422, "{kind} {fields:?} must be refused: {html}");
    let marker = format!(r#"id="err-{field}">"#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no error at {field} for {fields:?}: {html}"))
        + marker.len();
    html[start..start + html[start..].find("</p>").unwrap()].to_string()
}

both_backends!(ssrf_attempts_are_refused, |backend| async move {
    // Production setting: the development loopback exception is off.
    let Some(app) = TestApp::spawn_with(backend, &[("SVYAZKA_DEV_ALLOW_LOOPBACK", "false")]).await
    else {
        return;
    };
    app.setup_admin().await;
    let internal = Canned::listener();
    let p = internal.port;
    let chatapi_urls = [
        (format!("https://127.0.0.1:{p}/instance1"), "публичн"),
        (format!("https://[::1]:{p}/instance1"), "публичн"),
        (
            "https://169.254.169.254/latest/meta-data".to_string(),
            "link-local",
        ),
        ("https://10.0.0.1/instance1".to_string(), "публичн"),
        ("https://100.64.0.1/instance1".to_string(), "публичн"),
        ("https://[fd00::1]/instance1".to_string(), "публичн"),
        // A name that resolves to loopback, caught by the client's resolver.
        (format!("https://localhost:{p}/instance1"), "непубличные"),
        (format!("http://127.0.0.1:{p}/instance1"), "https://"),
        (
            "https://user:secret@api.chat-api.com/instance1".to_string(),
            "пароль",
        ),
        (
            "https://api.chat-api.com/instance1#fragment".to_string(),
            "#",
        ),
    ];
    for (url, expected) in &chatapi_urls {
        let msg = refused_field(
            &app,
            "chatapi",
            &[
                ("name", "Внутренний адрес"),
                ("api_url", url),
                ("token", "tok-0123456789"),
            ],
            "api_url",
        )
        .await;
        assert!(msg.contains(expected), "{url}: {msg}");
    }
    // The Telegram base: a "#" no longer cuts the /bot{token}/ suffix off, and internal hosts
    // are refused like everywhere else.
    for base in [
        format!("https://127.0.0.1:{p}/#"),
        format!("https://localhost:{p}"),
        "https://api.telegram.org/#".to_string(),
    ] {
        refused_field(
            &app,
            "telegram",
            &[
                ("name", "Внутренний бот"),
                ("api_url", &base),
                ("token", TG_TOKEN),
            ],
            "api_url",
        )
        .await;
    }
    // The RetailCRM loopback exception exists only in development.
    for domain in [
        format!("http://127.0.0.1:{p}"),
        format!("http://localhost:{p}"),
        format!("http://[::1]:{p}"),
    ] {
        refused_field(
            &app,
            "retailcrm",
            &[
                ("name", "Внутренний RetailCRM"),
                ("domain", &domain),
                ("api_key", CRM_KEY),
            ],
            "domain",
        )
        .await;
    }
    assert_eq!(
        internal.hits(),
        0,
        "no request reached the internal address"
    );
    app.stop().await;
});

both_backends!(
    redirects_are_not_followed_and_upstream_pages_not_echoed,
    |backend| async move {
        // Development setting (loopback allowed), so the canned servers can be reached at all.
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let target = Canned::listener();
        let redirect = Canned::start(format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{}/steal\r\nContent-Length: 0\r\n\r\n",
            target.port
        ));
        let msg = refused_field(
            &app,
            "chatapi",
            &[
                ("name", "Перенаправление"),
                (
                    "api_url",
                    &format!("http://127.0.0.1:{}/instance1", redirect.port),
                ),
                ("token", "tok-0123456789"),
            ],
            "api_url",
        )
        .await;
        assert!(msg.contains("302"), "{msg}");
        assert!(redirect.hits() >= 1);
        assert_eq!(target.hits(), 0, "the redirect was not followed");

        let page = "<html><body>INTERNAL-ADMIN-PANEL db_password=hunter2</body></html>";
        let leaky = Canned::start(format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
            page.len()
        ));
        for (kind, field, fields) in [
            (
                "chatapi",
                "api_url",
                vec![(
                    "api_url",
                    format!("http://127.0.0.1:{}/instance1", leaky.port),
                )],
            ),
            (
                "retailcrm",
                "api_key",
                vec![("domain", format!("http://127.0.0.1:{}", leaky.port))],
            ),
            (
                "telegram",
                "token",
                vec![("api_url", format!("http://127.0.0.1:{}", leaky.port))],
            ),
        ] {
            let mut all: Vec<(&str, &str)> = vec![
                ("name", "Утечка страницы"),
                ("api_key", CRM_KEY),
                ("token", TG_TOKEN),
            ];
            all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            let msg = refused_field(&app, kind, &all, field).await;
            assert!(msg.contains("500"), "{kind}: status is shown: {msg}");
            assert!(
                !msg.contains("INTERNAL-ADMIN-PANEL") && !msg.contains("hunter2"),
                "{kind}: the upstream page is not echoed: {msg}"
            );
        }
        app.stop().await;
    }
);

// ---- 5. secrets stay with their provider and address ----

/// The masked value an edit form shows in place of a stored secret.
fn masked_value(form: &str, field: &str) -> String {
    form.split(&format!(r#"name="{field}" value=""#))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string()
}

both_backends!(
    a_stored_secret_is_not_sent_to_a_new_address,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let elsewhere = Canned::listener();
        let new_address = format!("http://127.0.0.1:{}", elsewhere.port);

        let edit = format!("/providers/{crm}/edit");
        let (_, form) = app.get_html(&edit).await;
        let masked = masked_value(&form, "api_key");
        let r = app
            .submit(
                &edit,
                &edit,
                &[
                    ("name", "Мой RetailCRM"),
                    ("domain", &new_address),
                    ("api_key", &masked),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 422);
        let html = r.text().await.unwrap();
        assert!(html.contains("введите ключ заново"), "{html}");

        let edit = format!("/providers/{wa}/edit");
        let r = app
            .submit(
                &edit,
                &edit,
                &[
                    ("name", "WhatsApp магазина"),
                    ("api_url", &format!("{new_address}/instance1")),
                    ("token", ""),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 422);

        // A bot's API base moved with the token left masked: the token is asked for again.
        let tg = app.add_telegram(&fakes).await;
        let edit_tg = format!("/providers/{tg}/edit");
        let (_, form) = app.get_html(&edit_tg).await;
        let masked_token = masked_value(&form, "token");
        let r = app
            .submit(
                &edit_tg,
                &edit_tg,
                &[
                    ("name", "Бот магазина"),
                    ("api_url", &new_address),
                    ("token", &masked_token),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 422);
        assert!(r.text().await.unwrap().contains("введите ключ заново"));
        assert_eq!(elsewhere.hits(), 0, "the stored secrets went nowhere");

        // Same address, secret left masked: kept, as before.
        let (_, form) = app.get_html(&edit).await;
        let masked = masked_value(&form, "token");
        let r = app
            .submit(
                &edit,
                &edit,
                &[
                    ("name", "WhatsApp магазина"),
                    ("api_url", &fakes.wa_base),
                    ("token", &masked),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303);

        // A ciphertext copied to another provider's row does not decrypt there.
        let core = app.core().clone();
        let copied = core
            .db(move |c| {
                use svyazka_core::db::schema::providers::dsl::*;
                let from: String = providers.find(crm).select(secrets).first(c)?;
                diesel::update(providers.find(wa))
                    .set(secrets.eq(from))
                    .execute(c)?;
                Ok::<_, svyazka_core::db::DbError>(())
            })
            .await;
        assert!(copied.is_ok());
        let moved = app.provider(wa).await;
        assert!(moved.secrets(&app.core().crypto).is_err());
        app.stop().await;
    }
);

// ---- 2. sessions ----

/// Signs in through a cookie-less client and returns the signed-in session cookie, as a
/// thief would copy it.
async fn signed_in_cookie(app: &TestApp) -> String {
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login_page = raw.get(app.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&login_page);
    let html = login_page.text().await.unwrap();
    let token = extract_meta_csrf(&html).unwrap();
    let r = raw
        .post(app.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", token.as_str()),
            ("username", ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    session_cookie(&r)
}

/// A client that always sends `cookie` and never stores another.
fn with_cookie(cookie: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("svyazka_session="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie in {:?}", r.headers()))
        .to_string()
}

async fn status_of(client: &reqwest::Client, app: &TestApp, path: &str) -> u16 {
    client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The browser that signed in, and a thief holding a copy of its cookie.
async fn two_copies(app: &TestApp) -> (reqwest::Client, reqwest::Client) {
    let cookie = signed_in_cookie(app).await;
    (with_cookie(&cookie), with_cookie(&cookie))
}

async fn csrf_with(client: &reqwest::Client, app: &TestApp, path: &str) -> String {
    let html = client
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    extract_meta_csrf(&html).unwrap()
}

both_backends!(a_logged_out_cookie_is_worthless, |backend| async move {
    let Some(app) = TestApp::signed_in(backend).await else {
        return;
    };
    let (original, thief) = two_copies(&app).await;
    assert_eq!(
        status_of(&thief, &app, "/providers").await,
        200,
        "a copy works while signed in"
    );
    let token = csrf_with(&original, &app, "/providers").await;
    let r = original
        .post(app.url("/logout"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        status_of(&thief, &app, "/providers").await,
        303,
        "the copied cookie died with the logout"
    );
    assert_eq!(status_of(&original, &app, "/providers").await, 303);
    app.stop().await;
});

async fn age_sessions(app: &TestApp, created_ago: chrono::Duration, seen_ago: chrono::Duration) {
    app.core()
        .db(move |c| {
            use svyazka_core::db::schema::admin_sessions::dsl::*;
            let t = svyazka_core::db::now();
            diesel::update(admin_sessions)
                .set((
                    created_at.eq(t - created_ago),
                    last_seen_at.eq(t - seen_ago),
                ))
                .execute(c)
                .map_err(svyazka_core::db::DbError::from)
        })
        .await
        .unwrap();
}

both_backends!(sessions_expire_on_the_server, |backend| async move {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("SVYAZKA_SESSION_IDLE_MINUTES", "30"),
            ("SVYAZKA_SESSION_MAX_MINUTES", "480"),
        ],
    )
    .await
    else {
        return;
    };
    app.setup_admin().await;
    // Idle: unused for longer than the idle lifetime.
    age_sessions(
        &app,
        chrono::Duration::minutes(40),
        chrono::Duration::minutes(31),
    )
    .await;
    assert_eq!(app.get("/providers").await.headers()["location"], "/login");

    // Absolute: in use all along, but signed in longer ago than the absolute lifetime.
    assert_eq!(app.login().await.status().as_u16(), 303);
    age_sessions(
        &app,
        chrono::Duration::minutes(470),
        chrono::Duration::minutes(1),
    )
    .await;
    assert_eq!(
        app.get("/providers").await.status().as_u16(),
        200,
        "still within both"
    );
    age_sessions(
        &app,
        chrono::Duration::minutes(481),
        chrono::Duration::minutes(1),
    )
    .await;
    assert_eq!(app.get("/providers").await.headers()["location"], "/login");
    app.stop().await;
});

both_backends!(
    password_change_and_sign_out_everywhere_end_every_copy,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let (original, thief) = two_copies(&app).await;
        let (_, html) = app.get_html("/account").await;
        assert!(html.contains("Смена пароля") && html.contains("Выйти на всех устройствах"));

        // Wrong current password: nothing changes.
        let r = app
            .submit(
                "/account",
                "/account/password",
                &[
                    ("current", "not my password"),
                    ("new", "another long password"),
                    ("repeat", "another long password"),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 422);
        assert!(r.text().await.unwrap().contains("Текущий пароль неверен"));
        assert_eq!(status_of(&thief, &app, "/providers").await, 200);

        let r = app
            .submit(
                "/account",
                "/account/password",
                &[
                    ("current", PASSWORD),
                    ("new", "another long password"),
                    ("repeat", "another long password"),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(
            app.get_html("/account?done=password").await.0,
            200,
            "this browser stays in"
        );
        assert_eq!(status_of(&thief, &app, "/providers").await, 303);
        assert_eq!(status_of(&original, &app, "/providers").await, 303);

        // Sign out everywhere: a second device and this browser alike.
        let other = client();
        let token = {
            let html = other
                .get(app.url("/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            extract_meta_csrf(&html).unwrap()
        };
        let r = other
            .post(app.url("/login"))
            .form(&[
                ("csrf", token.as_str()),
                ("username", ADMIN),
                ("password", "another long password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(status_of(&other, &app, "/providers").await, 200);
        let r = app
            .submit("/account", "/account/sign-out-everywhere", &[])
            .await;
        assert_eq!(r.status().as_u16(), 303);
        assert_eq!(status_of(&other, &app, "/providers").await, 303);
        assert_eq!(app.get("/providers").await.status().as_u16(), 303);
        app.stop().await;
    }
);

// ---- 3. sign-in throttling ----

both_backends!(
    a_login_flood_is_counted_before_checking_and_webhooks_keep_their_pace,
    |backend| async move {
        // The test client is the "proxy"; X-Forwarded-For names the clients behind it. A small
        // database pool: were passwords verified while holding a connection, the flood's
        // verifications would leave the webhooks none.
        let Some(app) = TestApp::spawn_with(
            backend,
            &[
                ("SVYAZKA_TRUSTED_PROXIES", "127.0.0.1"),
                ("SVYAZKA_DB_POOL", "4"),
            ],
        )
        .await
        else {
            return;
        };
        app.setup_admin().await;
        let fakes = Fakes::start();
        let wa = app.add_chatapi(&fakes).await;
        let hook = app.hook_url(wa).await;
        let mut baseline = Duration::ZERO;
        for i in 0..5 {
            let t = Instant::now();
            let s = fakes
                .wa
                .post_incoming(&hook, "79990000001", "Анна", &format!("до {i}"))
                .await
                .unwrap();
            assert_eq!(s.as_u16(), 200);
            baseline = baseline.max(t.elapsed());
        }

        let token = app.csrf("/login").await;
        let attempt = |from: String, user: String| {
            let token = token.clone();
            let client = app.client.clone();
            let url = app.url("/login");
            async move {
                client
                    .post(url)
                    .header("x-forwarded-for", from)
                    .form(&[
                        ("csrf", token.as_str()),
                        ("username", user.as_str()),
                        ("password", "guess guess guess"),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        // 20 parallel guesses from one address, 8 from others.
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..20 {
            flood.spawn(attempt("203.0.113.9".into(), format!("guess{i}")));
        }
        for i in 0..8 {
            flood.spawn(attempt(format!("198.51.100.{i}"), format!("other{i}")));
        }
        // Webhooks while the flood is being verified.
        let mut during = Vec::new();
        for i in 0..15 {
            let t = Instant::now();
            let s = fakes
                .wa
                .post_incoming(&hook, "79990000002", "Борис", &format!("во время {i}"))
                .await
                .unwrap();
            assert_eq!(s.as_u16(), 200);
            during.push(t.elapsed());
        }
        let mut statuses = Vec::new();
        while let Some(s) = flood.join_next().await {
            statuses.push(s.unwrap());
        }
        let verified = statuses.iter().filter(|s| **s == 401).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(
            (verified, refused),
            (5 + 8, 15),
            "one address gets 5 checked attempts however many run in parallel: {statuses:?}"
        );
        let worst = during.iter().max().copied().unwrap_or_default();
        assert!(
            worst < baseline * 5 + Duration::from_millis(1500),
            "webhooks slowed from {baseline:?} to {worst:?} during the flood"
        );
        // The address that guessed is still refused, even with the right password.
        let r = app
            .client
            .post(app.url("/login"))
            .header("x-forwarded-for", "203.0.113.9")
            .form(&[
                ("csrf", token.as_str()),
                ("username", ADMIN),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 429);
        // Another address behind the same proxy is not locked out.
        let r = app
            .client
            .post(app.url("/login"))
            .header("x-forwarded-for", "192.0.2.44")
            .form(&[
                ("csrf", token.as_str()),
                ("username", ADMIN),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303);
        app.stop().await;
    }
);

// ---- 6. templates ----

both_backends!(
    the_template_memory_bomb_is_refused_and_the_run_fails_cleanly,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let bomb = r#"{{ "y" * 99999999 }}"#.repeat(100);
        // Stored directly, as if it had slipped past the editor.
        let bundle = app
            .bundle(
                crm,
                "new_deal",
                &["new"],
                wa,
                vec![step(
                    "send_message",
                    vec![
                        ("recipient", event_field("phone")),
                        ("text", template(&bomb)),
                    ],
                )],
            )
            .await;
        // The editor's live preview refuses it at once.
        let page = format!("/bundles/{bundle}");
        let started = Instant::now();
        let r = app
            .submit(
                &page,
                &format!("/bundles/{bundle}/steps/0/preview?param=text"),
                &[("text.tpl", bomb.as_str())],
            )
            .await;
        assert_eq!(r.status().as_u16(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("нельзя умножать"), "{html}");
        assert!(started.elapsed() < Duration::from_secs(2));

        let url = app.hook_url(crm).await;
        let (_, reply) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "phone": "+79990000003"}),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let runs = app.settled_runs(1, Duration::from_secs(30)).await;
        assert_eq!(runs[0].status, "failed");
        // Stored as a typed reason (worded on the run page).
        assert!(
            runs[0]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("\"multiplication\""),
            "{:?}",
            runs[0].error
        );
        assert_eq!(fakes.wa.sent_count(), 0);
        assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
        app.stop().await;
    }
);

// ---- 7. headers ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::signed_in(Backend::Sqlite).await.unwrap();
    let fakes = Fakes::start();
    let wa = app.add_chatapi(&fakes).await;
    for path in [
        "/login".to_string(),
        "/providers".to_string(),
        format!("/providers/{wa}"),
        "/account".to_string(),
        "/bundles".to_string(),
        "/runs".to_string(),
        "/no-such-page".to_string(),
        "/static/app.js".to_string(),
        "/healthz".to_string(),
    ] {
        let r = app.get(&path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let script_src = csp.split(';').find(|d| d.contains("script-src")).unwrap();
        assert!(!script_src.contains("unsafe"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        if path != "/static/app.js" {
            assert_eq!(h["cache-control"], "no-store", "{path}");
        }
    }
    // The live domain line is inserted as HTML by htmx: what was typed comes back escaped.
    let r = app
        .get("/providers/normalize?domain=%3Cimg%2Fsrc%3Dx%2Fonerror%3Dalert(1)%3E")
        .await;
    let body = r.text().await.unwrap();
    assert!(!body.contains("<img"), "{body}");
    assert!(body.contains("&lt;img"), "{body}");
    app.stop().await;
}

#[test]
fn templates_have_no_inline_script_or_handlers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let mut stack = vec![dir];
    let mut checked = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let html = std::fs::read_to_string(&path).unwrap().to_lowercase();
            checked += 1;
            for (i, _) in html.match_indices("<script") {
                let tag = &html[i..i + html[i..].find('>').unwrap()];
                assert!(tag.contains("src="), "{}: inline <script>", path.display());
            }
            for attr in [
                " onclick=",
                " onsubmit=",
                " onchange=",
                " oninput=",
                " onload=",
                "javascript:",
                " hx-on",
            ] {
                assert!(!html.contains(attr), "{}: {attr}", path.display());
            }
        }
    }
    assert!(checked > 10);
}
