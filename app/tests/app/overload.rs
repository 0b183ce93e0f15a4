//! Overload: senders post RetailCRM triggers for a running bundle as fast as the app answers,
//! while the worker in the same process runs them. Intake answers every trigger 200 once it is
//! stored (nobody is refused), execution keeps working during the flood instead of waiting for
//! it to end (embedded), and afterwards every trigger has run exactly once (both modes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::support::*;

/// Concurrent senders, each posting its next trigger as soon as the last one was answered.
const SENDERS: usize = 12;
/// How long they post.
const FLOOD: Duration = Duration::from_secs(2);

both_backends!(
    a_flood_of_triggers_leaves_execution_its_share_and_loses_nothing,
    |backend| async move {
        // Few slots, so execution is saturated early in the flood even on a fast machine.
        let extra = [
            ("SVYAZKA_WORKER_CONCURRENCY", "8"),
            ("SVYAZKA_RETAILCRM_RPS", "10000"),
        ];
        let Some(app) = TestApp::spawn_with(backend, &extra).await else {
            return;
        };
        app.setup_admin().await;
        let fakes = Arc::new(Fakes::start());
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        let url = Arc::new(app.hook_url(crm).await);

        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..SENDERS)
            .map(|s| {
                let (fakes, url, stop) = (fakes.clone(), url.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut statuses = Vec::new();
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let name = format!("Клиент{s}-{i}");
                        let order = json!({"status": "new", "firstName": name, "phone": format!("+79{s:02}{i:07}")});
                        let (_, reply) = fakes
                            .crm
                            .create_order_and_fire(&url, "shop", order)
                            .await
                            .unwrap();
                        statuses.push(reply.status);
                        i += 1;
                    }
                    statuses
                })
            })
            .collect();
        tokio::time::sleep(FLOOD).await;
        stop.store(true, Ordering::Relaxed);
        // Runs finished while triggers were still pouring in (the last ones in flight are
        // being answered now).
        let during = fakes.wa.sent_count();
        let mut statuses = Vec::new();
        for s in senders {
            statuses.extend(s.await.unwrap());
        }
        let posted = statuses.len();
        let refused: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
        assert!(
            refused.is_empty(),
            "every trigger answered 200: {refused:?}"
        );
        eprintln!("flood: {posted} triggers taken, {during} runs finished during the flood");
        // Execution did not wait for the flood to end: a fair share of the machine shows as a
        // good number of finished runs (a starved worker managed none or a sliver of them).
        // Embedded only, where web and worker share one process and one SQLite file; in queue
        // mode the worker takes its messages from Redis, whose polling alone can take most of
        // so short a window on a busy machine.
        if backend == Backend::Sqlite {
            assert!(
                during * 20 >= posted,
                "runs kept completing during the flood: {during} of {posted}"
            );
        }

        let runs = app.settled_runs(posted, Duration::from_secs(120)).await;
        assert_eq!(runs.len(), posted, "one run per trigger");
        assert!(
            runs.iter().all(|r| r.status == "succeeded"),
            "every run succeeded"
        );
        let sent = fakes.wa.sent_messages();
        let mut bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
        bodies.sort_unstable();
        bodies.dedup();
        assert_eq!(bodies.len(), sent.len(), "no customer got a message twice");
        assert_eq!(
            sent.len(),
            posted,
            "every trigger's customer got the message"
        );
        app.stop().await;
    }
);
