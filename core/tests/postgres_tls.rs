//! PostgreSQL over TLS with the bundled libpq (no system libpq or OpenSSL package): the
//! connection with sslmode=require must come up encrypted. Runs when TEST_DATABASE_URL is set
//! (CI: SVYAZKA_REQUIRE_SERVICES=1 makes a missing URL a failure).
#![allow(clippy::unwrap_used)]

use diesel::prelude::*;
use diesel::sql_types::Bool;

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

#[test]
fn sslmode_require_connects_encrypted() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        assert_ne!(
            std::env::var("SVYAZKA_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "SVYAZKA_REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set"
        );
        eprintln!("skipping: TEST_DATABASE_URL not set");
        return;
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut conn = diesel::PgConnection::establish(&format!("{url}{sep}sslmode=require"))
        .unwrap_or_else(|e| panic!("sslmode=require failed (is TLS compiled into libpq?): {e}"));
    let row: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .unwrap();
    assert!(row.ssl, "the connection is encrypted");
}
