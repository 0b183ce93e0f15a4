//! Property tests: no webhook parser or template input can panic the server; bad input is an
//! error with a reason. (The messenger parsers also have randomized tests next to them.)
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::json;
use svyazka_core::bundles::template;
use svyazka_core::ingest;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn trigger_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), json_ct in any::<bool>()) {
        let ct = if json_ct { "application/json" } else { "application/x-www-form-urlencoded" };
        if let Ok(pairs) = ingest::trigger_pairs(ct, &body) {
            let _ = ingest::parse_trigger(&pairs);
        }
    }

    #[test]
    fn trigger_pairs_with_repeats_and_gaps_are_refused_or_valid(
        pairs in proptest::collection::vec(("(type|id|status|event|x)", "[a-z0-9-]{0,12}"), 0..8)
    ) {
        let pairs: Vec<(String, String)> = pairs;
        match ingest::parse_trigger(&pairs) {
            Ok(t) => {
                prop_assert!(t.id > 0);
                prop_assert!(t.event == "new" || t.event == "status");
                prop_assert_eq!(pairs.iter().filter(|(k, _)| k == "id").count(), 1);
            }
            Err(e) => prop_assert!(!e.0.is_empty()),
        }
    }

    #[test]
    fn messenger_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ingest::parse_chatapi(&body);
        let _ = ingest::parse_telegram(&body);
    }

    #[test]
    fn templates_never_panic(text in ".{0,200}") {
        let known = ["first_name".to_string(), "step1.contact_id".to_string()].into_iter().collect();
        let _ = template::check(&text, &known);
        let _ = template::render(&text, &json!({"first_name": "Анна", "step1": {"contact_id": 5}}));
    }

    #[test]
    fn event_data_is_never_evaluated(value in ".{0,100}") {
        let out = template::render("{{ text }}", &json!({"text": value.clone()})).unwrap();
        prop_assert_eq!(out, value);
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let nested = "[".repeat(100_000) + &"]".repeat(100_000);
    assert!(ingest::parse_chatapi(nested.as_bytes()).is_err());
    assert!(ingest::parse_telegram(nested.as_bytes()).is_err());
    assert!(ingest::trigger_pairs("application/json", nested.as_bytes()).is_err());
}

#[test]
fn template_injection_has_no_file_env_or_network_access() {
    for t in [
        "{% include '/etc/passwd' %}",
        "{% extends '/etc/passwd' %}",
        "{% import 'os' as os %}{{ os.system('id') }}",
        "{{ range(10**9)|list }}",
        "{{ ''.__class__ }}",
        "{{ env.HOME }}",
    ] {
        let out = template::render(t, &json!({}));
        assert!(
            out.as_ref().map(|s| !s.contains("root:")).unwrap_or(true),
            "{t}: {out:?}"
        );
    }
}
