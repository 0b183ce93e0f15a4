use crate::both_backends;
use crate::support::*;

both_backends!(first_visit_setup_then_login_logout, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // A fresh install sends every page to the setup form.
    let r = app.get("/providers").await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/setup");
    let (status, html) = app.get_html("/setup").await;
    assert_eq!(status, 200);
    assert!(html.contains("Первый запуск"), "Russian by default");

    app.setup_admin().await;
    let (status, html) = app.get_html("/providers").await;
    assert_eq!(status, 200);
    assert!(html.contains("Провайдеры") && html.contains("Связки") && html.contains(ADMIN));

    // The setup page refuses once an admin exists.
    assert_eq!(app.get("/setup").await.headers()["location"], "/login");
    let token = app.csrf("/providers").await;
    let r = app
        .post_form(
            "/setup",
            &[
                ("csrf", &token),
                ("username", "intruder"),
                ("password", "0123456789"),
                ("password_repeat", "0123456789"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 403);

    app.logout().await;
    assert_eq!(app.get("/providers").await.headers()["location"], "/login");
    let r = app.login().await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(app.get_html("/bundles").await.0, 200);
    app.stop().await;
});

both_backends!(
    setup_form_errors_stay_next_to_fields,
    |backend| async move {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        let r = app
            .submit(
                "/setup",
                "/setup",
                &[
                    ("username", "ab"),
                    ("password", "short"),
                    ("password_repeat", "other"),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 422);
        let html = r.text().await.unwrap();
        assert!(
            html.contains(r#"id="err-username""#)
                && html.contains(r#"id="err-password""#)
                && html.contains(r#"id="err-repeat""#)
        );
        // Nothing was created: the next visit still goes to setup.
        assert_eq!(app.get("/providers").await.headers()["location"], "/setup");
        app.stop().await;
    }
);

both_backends!(
    wrong_password_says_nothing_specific_and_is_rate_limited,
    |backend| async move {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        app.setup_admin().await;
        app.logout().await;
        let r = app
            .submit(
                "/login",
                "/login",
                &[("username", ADMIN), ("password", "wrong password!")],
            )
            .await;
        assert_eq!(r.status().as_u16(), 401);
        let html = r.text().await.unwrap();
        assert!(html.contains("Неверный логин или пароль."));
        let r = app
            .submit(
                "/login",
                "/login",
                &[("username", "nobody"), ("password", "wrong password!")],
            )
            .await;
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Неверный логин или пароль."),
            "same message for an unknown user"
        );
        for _ in 0..3 {
            app.submit(
                "/login",
                "/login",
                &[("username", ADMIN), ("password", "nope nope nope")],
            )
            .await;
        }
        // Five failures: even the right password is refused for a while.
        let r = app.login().await;
        assert_eq!(r.status().as_u16(), 429);
        assert_eq!(app.get("/providers").await.status().as_u16(), 303);
        app.stop().await;
    }
);

both_backends!(
    post_without_csrf_is_refused_and_changes_nothing,
    |backend| async move {
        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        // Without a token the setup form cannot create an admin.
        let r = app
            .post_form(
                "/setup",
                &[
                    ("username", ADMIN),
                    ("password", PASSWORD),
                    ("password_repeat", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 403);
        let r = app
            .post_form(
                "/setup",
                &[
                    ("csrf", "forged"),
                    ("username", ADMIN),
                    ("password", PASSWORD),
                    ("password_repeat", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status().as_u16(), 403);
        assert_eq!(app.get("/providers").await.headers()["location"], "/setup");

        app.setup_admin().await;
        // Logout without a token keeps the session.
        let r = app.post_form("/logout", &[]).await;
        assert_eq!(r.status().as_u16(), 403);
        assert_eq!(app.get("/providers").await.status().as_u16(), 200);
        // A token from another session is worthless here.
        let other = client();
        let html = other
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let foreign = extract_meta_csrf(&html).unwrap();
        let r = app.post_form("/logout", &[("csrf", &foreign)]).await;
        assert_eq!(r.status().as_u16(), 403);
        app.stop().await;
    }
);

both_backends!(session_cookie_is_http_only_and_lax, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let token = app.csrf("/setup").await;
    let code = app.setup_code();
    let r = app
        .post_form(
            "/setup",
            &[
                ("csrf", &token),
                ("setup_code", &code),
                ("username", ADMIN),
                ("password", PASSWORD),
                ("password_repeat", PASSWORD),
            ],
        )
        .await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(cookie.contains("svyazka_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http install must not set Secure"
    );
    app.stop().await;
});

both_backends!(english_switch, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let r = app
        .client
        .get(app.url("/lang/en"))
        .header("referer", format!("{}/setup", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/setup");
    let (_, html) = app.get_html("/setup").await;
    assert!(html.contains("First start") && html.contains(r#"lang="en""#));
    app.stop().await;
});

// A password stored by an older release (argon2's default costs, 19 MiB per hash) still
// signs in, and that sign-in stores it again at today's costs (7 MiB, five passes), so the
// process' peak memory no longer carries 19 MiB per sign-in. Sessions are kept.
both_backends!(
    an_older_password_hash_signs_in_and_is_upgraded,
    |backend| async move {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        use diesel::prelude::*;
        use svyazka_core::db::{DbError, schema::admins};

        let Some(app) = TestApp::spawn(backend).await else {
            return;
        };
        app.setup_admin().await;
        app.logout().await;
        let salt = SaltString::generate(&mut OsRng);
        let old = argon2::Argon2::default()
            .hash_password(PASSWORD.as_bytes(), &salt)
            .expect("hash")
            .to_string();
        assert!(old.contains("m=19456,t=2,p=1"));
        let stored = old.clone();
        app.core()
            .db(move |c| {
                diesel::update(admins::table)
                    .set(admins::password_hash.eq(stored))
                    .execute(c)
                    .map_err(DbError::from)
            })
            .await
            .unwrap();

        let r = app.login().await;
        assert_eq!(r.status().as_u16(), 303, "the old hash still signs in");
        assert_eq!(app.get_html("/bundles").await.0, 200);
        let hash: String = app
            .core()
            .db(|c| {
                admins::table
                    .select(admins::password_hash)
                    .first::<String>(c)
                    .map_err(DbError::from)
            })
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert_ne!(hash, old);
        assert_eq!(
            app.get_html("/bundles").await.0,
            200,
            "the session survives the re-hash"
        );
        app.logout().await;
        assert_eq!(app.login().await.status().as_u16(), 303);
        app.stop().await;
    }
);
