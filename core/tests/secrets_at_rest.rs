//! Provider secrets at rest: bound to their row, and secrets written by earlier versions
//! (raw key, no associated data) re-encrypted at start without the admin noticing.
#![allow(clippy::unwrap_used)]

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use diesel::prelude::*;
use svyazka_core::db::DbError;
use svyazka_core::db::schema::providers as rows;
use svyazka_core::providers::settings::ChatapiSettings;
use svyazka_core::providers::{self, NewProvider, ProviderKind, Secrets, Settings};
use svyazka_core::{Config, Core};

fn start(dir: &std::path::Path) -> Core {
    let config = Config::from_vars(&[("SVYAZKA_DATA_DIR", dir.to_str().unwrap())]).unwrap();
    Core::start(config).unwrap()
}

fn chatapi(token: &str) -> NewProvider {
    NewProvider {
        kind: ProviderKind::Chatapi,
        name: "WhatsApp магазина".into(),
        settings: Settings::Chatapi(ChatapiSettings {
            api_url: "https://api.chat-api.com/instance1".into(),
            webhook_set: false,
            account_status: "authenticated".into(),
        }),
        secrets: Secrets::Chatapi {
            token: token.into(),
        },
        check_message: None,
    }
}

/// What versions before derived keys stored: AES-256-GCM under the raw secret key, no
/// associated data.
fn legacy_ciphertext(dir: &std::path::Path, plain: &str) -> String {
    let key = B64
        .decode(
            std::fs::read_to_string(dir.join("secret.key"))
                .unwrap()
                .trim(),
        )
        .unwrap();
    let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
    let nonce = [3u8; 12];
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap(),
    );
    B64.encode(out)
}

async fn stored(core: &Core, id: i64) -> String {
    core.db(move |c| {
        rows::table
            .find(id)
            .select(rows::secrets)
            .first::<String>(c)
            .map_err(DbError::from)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn old_secrets_are_re_encrypted_at_start_and_stay_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let core = start(&dir);
    let crypto = core.crypto.clone();
    let id = core
        .db(move |c| providers::insert(c, &crypto, &chatapi("token-before")))
        .await
        .unwrap();
    assert!(stored(&core, id).await.starts_with("v2:"));

    // Roll the row back to the old format, as an install upgraded from an earlier version has it.
    let legacy = legacy_ciphertext(&dir, r#"{"kind":"chatapi","token":"old-token-123"}"#);
    let written = legacy.clone();
    core.db(move |c| {
        diesel::update(rows::table.find(id))
            .set(rows::secrets.eq(written))
            .execute(c)
            .map_err(DbError::from)
    })
    .await
    .unwrap();
    let old = core.db(move |c| providers::get(c, id)).await.unwrap();
    assert!(
        old.secrets(&core.crypto).is_err(),
        "the old format is not read in normal operation"
    );
    drop(core);

    let core = start(&dir);
    let now = stored(&core, id).await;
    assert!(now.starts_with("v2:") && now != legacy, "{now}");
    let p = core.db(move |c| providers::get(c, id)).await.unwrap();
    match p.secrets(&core.crypto).unwrap() {
        Secrets::Chatapi { token } => assert_eq!(token, "old-token-123"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_secret_copied_to_another_provider_does_not_decrypt() {
    let tmp = tempfile::tempdir().unwrap();
    let core = start(&tmp.path().join("data"));
    let crypto = core.crypto.clone();
    let (a, b) = core
        .db(move |c| {
            let a = providers::insert(c, &crypto, &chatapi("token-of-a"))?;
            let b = providers::insert(c, &crypto, &chatapi("token-of-b"))?;
            Ok::<_, providers::ProviderError>((a, b))
        })
        .await
        .unwrap();
    let from_a = stored(&core, a).await;
    core.db(move |c| {
        diesel::update(rows::table.find(b))
            .set(rows::secrets.eq(from_a))
            .execute(c)
            .map_err(DbError::from)
    })
    .await
    .unwrap();
    let pb = core.db(move |c| providers::get(c, b)).await.unwrap();
    assert!(pb.secrets(&core.crypto).is_err());
    let pa = core.db(move |c| providers::get(c, a)).await.unwrap();
    assert!(pa.secrets(&core.crypto).is_ok());
}
