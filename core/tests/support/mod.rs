//! Databases for core's integration tests.
#![allow(dead_code)]

use diesel::prelude::*;

/// A PostgreSQL database that exists for one test only, dropped after it. `None` (skip) when
/// TEST_DATABASE_URL is not set, unless SVYAZKA_REQUIRE_SERVICES=1 makes that a failure.
pub struct PgDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub fn create(purpose: &str) -> Option<PgDb> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            assert_ne!(
                std::env::var("SVYAZKA_REQUIRE_SERVICES").as_deref(),
                Ok("1"),
                "SVYAZKA_REQUIRE_SERVICES=1 but TEST_DATABASE_URL is not set"
            );
            eprintln!("skipping: TEST_DATABASE_URL not set");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("svz_{purpose}_{}_{nanos}", std::process::id());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL unreachable: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create database");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL");
        url.set_path(&name);
        Some(PgDb {
            admin_url,
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}
