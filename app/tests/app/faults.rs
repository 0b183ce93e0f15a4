//! Upstreams that time out, fail and recover: runs come back with backoff and finish, and no
//! customer, deal or message exists twice, even when a create or a send went through but its
//! answer never arrived.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::support::*;

const SETTLE: Duration = Duration::from_secs(30);

/// Short timeouts and backoff so a few failed attempts fit in seconds.
const QUICK_RETRIES: [(&str, &str); 3] = [
    ("SVYAZKA_UPSTREAM_TIMEOUT_MS", "400"),
    ("SVYAZKA_BACKOFF_MS", "200"),
    ("SVYAZKA_BACKOFF_MAX_MS", "1000"),
];

/// A signed-in app with quick retries, the fakes, and a RetailCRM and a WhatsApp provider.
async fn connected(backend: Backend) -> Option<(TestApp, Fakes, i64, i64)> {
    let app = TestApp::spawn_with(backend, &QUICK_RETRIES).await?;
    app.setup_admin().await;
    let fakes = Fakes::start();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    Some((app, fakes, crm, wa))
}

both_backends!(
    retailcrm_creates_answered_too_late_are_not_repeated,
    |backend| async move {
        let Some((app, fakes, crm, wa)) = connected(backend).await else {
            return;
        };
        app.bundle(wa, "incoming_message", &[], crm, flow1_steps())
            .await;
        // The customer create, the order create and the MG send each go through but answer
        // after the client has given up: every step sees a timeout once.
        fakes.crm.stall_next(3, Duration::from_millis(1500));
        fakes
            .wa
            .post_incoming(&app.hook_url(wa).await, "79990001122", "Пётр", "Привет")
            .await
            .unwrap();
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert!(runs[0].attempts >= 4, "three timeouts, three retries");
        assert_eq!(fakes.crm.customers().len(), 1, "one customer");
        assert_eq!(fakes.crm.orders().len(), 1, "one deal");
        assert_eq!(fakes.crm.mg_messages().len(), 1, "one chat message");
        app.stop().await;
    }
);

both_backends!(
    whatsapp_send_that_timed_out_is_found_not_resent,
    |backend| async move {
        let Some((app, fakes, crm, wa)) = connected(backend).await else {
            return;
        };
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        // Two 500s (the send, then the history check of the retry), then a send the gateway
        // takes but answers after our timeout.
        fakes.wa.fail_next(2);
        fakes.wa.stall_sends(1, Duration::from_millis(1500));
        let url = app.hook_url(crm).await;
        let (_, reply) = fakes
            .crm
            .create_order_and_fire(
                &url,
                "shop",
                json!({"status": "new", "firstName": "Анна", "phone": "+79991234567"}),
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        let runs = app.settled_runs(1, SETTLE).await;
        assert_eq!(runs[0].status, "succeeded", "{:?}", runs[0].error);
        assert!(runs[0].attempts >= 4, "attempts: {}", runs[0].attempts);
        let sent = fakes.wa.sent_messages();
        assert_eq!(sent.len(), 1, "the customer got the message once");
        assert_eq!(sent[0].body, "Здравствуйте, Анна!");
        let steps = app
            .core()
            .db({
                let id = runs[0].id;
                move |c| svyazka_core::runs::steps(c, id)
            })
            .await
            .unwrap();
        let out = steps[0].outputs.clone().unwrap_or_default();
        assert!(
            out.contains(&sent[0].id),
            "the step reports the delivered message: {out}"
        );
        app.stop().await;
    }
);

both_backends!(
    a_retried_send_is_not_taken_for_another_runs_identical_message,
    |backend| async move {
        let Some((app, fakes, crm, wa)) = connected(backend).await else {
            return;
        };
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        let url = app.hook_url(crm).await;
        let anna = json!({"status": "new", "firstName": "Анна", "phone": "+79991234567"});
        let (_, reply) = fakes
            .crm
            .create_order_and_fire(&url, "shop", anna.clone())
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        app.settled_runs(1, SETTLE).await;
        // A second order a moment later greets her with the very same words, and its first
        // send fails: the retry finds the first order's message in the history, which is not
        // its own.
        fakes.wa.fail_next(1);
        fakes
            .crm
            .create_order_and_fire(&url, "shop", anna)
            .await
            .unwrap();
        let runs = app.settled_runs(2, SETTLE).await;
        assert!(runs.iter().all(|r| r.status == "succeeded"), "{runs:?}");
        assert!(
            runs.iter().any(|r| r.attempts >= 2),
            "the second send was retried"
        );
        let sent = fakes.wa.sent_messages();
        assert_eq!(sent.len(), 2, "each order's greeting reached her");
        assert!(sent.iter().all(|m| m.body == "Здравствуйте, Анна!"));
        app.stop().await;
    }
);
