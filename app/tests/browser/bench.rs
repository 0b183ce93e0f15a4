//! Server render time of the bundles list and the editor with 1,000 bundles in the database,
//! measured over HTTP from the test (printed, not asserted).

use std::time::{Duration, Instant};

use svyazka_core::bundles::{self, BundleState, NewBundle};

use crate::support::{Backend, Fakes, TestApp, event_field, output, step, template};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn measure(app: &TestApp, path: &str, n: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = app.get(path).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        times.push(t.elapsed());
        assert_eq!(status, 200, "{path}: {body}");
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_pages_render_with_a_thousand_bundles() {
    let fakes = Fakes::start();
    let app = TestApp::signed_in(Backend::Sqlite).await.unwrap();
    let crm = app.add_retailcrm(&fakes).await;
    let wa = app.add_chatapi(&fakes).await;
    let ids = app
        .core()
        .db(move |c| {
            let mut ids = Vec::new();
            for i in 0..1000 {
                let new = if i % 2 == 0 {
                    NewBundle {
                        name: format!("Входящие WhatsApp №{i}"),
                        source_provider_id: wa,
                        event_type: "incoming_message".into(),
                        target_provider_id: crm,
                        steps: vec![
                            step("new_contact", vec![("phone", event_field("sender_id"))]),
                            step(
                                "new_deal",
                                vec![
                                    ("phone", output(0, "contact_phone")),
                                    ("contact_id", output(0, "contact_id")),
                                ],
                            ),
                            step(
                                "new_message",
                                vec![
                                    ("contact_id", output(0, "contact_id")),
                                    ("text", event_field("text")),
                                ],
                            ),
                        ],
                    }
                } else {
                    NewBundle {
                        name: format!("Заказ №{i} → WhatsApp"),
                        source_provider_id: crm,
                        event_type: "new_deal".into(),
                        target_provider_id: wa,
                        steps: vec![step(
                            "send_message",
                            vec![
                                ("recipient", event_field("phone")),
                                ("text", template("Здравствуйте, {{ first_name }}!")),
                            ],
                        )],
                    }
                };
                let id = bundles::create(c, &new)?;
                if i % 3 == 0 {
                    bundles::set_state(c, id, BundleState::Running)?;
                }
                ids.push(id);
            }
            Ok::<_, svyazka_core::db::DbError>(ids)
        })
        .await
        .unwrap();
    let editor = format!("/bundles/{}", ids[0]);

    let (status, html) = app.get_html("/bundles").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr id=\"bundle-").count(), 1000);
    let (status, html) = app.get_html(&editor).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"step-3\""));

    let (list_p50, list_p99) = measure(&app, "/bundles", 50).await;
    let (editor_p50, editor_p99) = measure(&app, &editor, 50).await;
    println!(
        "bench: bundles_list p50={list_p50:.1}ms p99={list_p99:.1}ms editor p50={editor_p50:.1}ms p99={editor_p99:.1}ms (1000 bundles, 50 requests each, debug build)"
    );
    app.stop().await;
}
