//! The home page as a dashboard: each bundle's runs per hour over the last day with failures
//! marked, and each provider's last webhook delivery, all linking to the details.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::support::*;

both_backends!(
    home_charts_runs_per_hour_and_marks_failures,
    |backend| async move {
        let Some(app) = TestApp::signed_in(backend).await else {
            return;
        };
        let fakes = Fakes::start();
        let crm = app.add_retailcrm(&fakes).await;
        let wa = app.add_chatapi(&fakes).await;
        let bundle = app.bundle(crm, "new_deal", &[], wa, flow2_steps()).await;
        let url = app.hook_url(crm).await;
        // All three runs in one hour: too close to the next, wait for it.
        let now = chrono::Utc::now();
        if chrono::Timelike::minute(&now) == 59 && chrono::Timelike::second(&now) >= 45 {
            tokio::time::sleep(Duration::from_secs(16)).await;
        }
        // The order without a phone fails for good: there is no one to write to.
        for order in [
            json!({"status": "new", "firstName": "Анна", "phone": "+79991234567"}),
            json!({"status": "new", "firstName": "Анна", "phone": "+79991234568"}),
            json!({"status": "new", "firstName": "Анна"}),
        ] {
            fakes
                .crm
                .create_order_and_fire(&url, "shop", order)
                .await
                .unwrap();
        }
        let runs = app.settled_runs(3, Duration::from_secs(30)).await;
        assert_eq!(runs.iter().filter(|r| r.status == "failed").count(), 1);

        let (status, html) = app.get_html("/").await;
        assert_eq!(status, 200);
        let html = unescape(&html);
        let row = section(&html, &format!(r#"<tr data-bundle="{bundle}">"#), "</tr>");
        assert!(
            row.contains(&format!(r#"<a href="/runs?bundle_id={bundle}">3</a>"#)),
            "three runs today: {row}"
        );
        assert!(
            row.contains(&format!(
                r#"href="/runs?bundle_id={bundle}&status=failed">1</a>"#
            )),
            "one failure, linked to the failed runs: {row}"
        );
        // The current hour is the last bar: all three runs, one of them failed, and it links
        // to that hour's runs.
        assert_eq!(row.matches(r#"class="runs"/>"#).count(), 1, "{row}");
        assert_eq!(row.matches(r#"class="failed"/>"#).count(), 1, "{row}");
        assert!(row.contains("запусков 3, с ошибкой 1"), "{row}");
        let hour = chrono::Utc::now().format("%Y-%m-%dT%H:00").to_string();
        assert!(
            row.contains(&format!("/runs?bundle_id={bundle}&from={hour}")),
            "{row}"
        );
        let (_, hour_runs) = app
            .get_html(&format!("/runs?bundle_id={bundle}&from={hour}"))
            .await;
        assert_eq!(
            hour_runs.matches(r#"<td><a href="/runs/"#).count(),
            3,
            "the hour's link lists its runs"
        );

        let deliveries = section(&html, r#"<table id="provider-deliveries">"#, "</table>");
        let crm_row = section(
            deliveries,
            &format!(r#"<tr data-provider="{crm}">"#),
            "</tr>",
        );
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        assert!(
            crm_row.contains(&today),
            "RetailCRM delivered today: {crm_row}"
        );
        let wa_row = section(
            deliveries,
            &format!(r#"<tr data-provider="{wa}">"#),
            "</tr>",
        );
        assert!(
            wa_row.contains("ещё не было"),
            "nothing from WhatsApp yet: {wa_row}"
        );
        app.stop().await;
    }
);

/// The text from `start` up to the next `end`.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page:\n{html}"));
    let rest = &html[from..];
    &rest[..rest.find(end).map_or(rest.len(), |i| i + end.len())]
}
