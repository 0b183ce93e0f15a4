// Hand-written to match migrations/{sqlite,postgres}; both backends share these types.

diesel::table! {
    admins (id) {
        id -> BigInt,
        username -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    providers (id) {
        id -> BigInt,
        kind -> Text,
        name -> Text,
        settings -> Text,
        secrets -> Text,
        webhook_secret -> Text,
        check_status -> Text,
        check_message -> Nullable<Text>,
        checked_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    inbox (id) {
        id -> BigInt,
        provider_id -> BigInt,
        dedup_key -> Text,
        kind -> Text,
        payload -> Text,
        event -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        enqueued_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        conversation -> Nullable<Text>,
        outcome -> Nullable<Text>,
        waited_on -> Bool,
    }
}

diesel::table! {
    bundles (id) {
        id -> BigInt,
        name -> Text,
        source_provider_id -> BigInt,
        event_type -> Text,
        status_filter -> Text,
        target_provider_id -> BigInt,
        steps -> Text,
        state -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        consecutive_failures -> Integer,
        paused_reason -> Nullable<Text>,
    }
}

diesel::table! {
    runs (id) {
        id -> BigInt,
        bundle_id -> BigInt,
        inbox_id -> BigInt,
        status -> Text,
        attempts -> Integer,
        definition -> Text,
        event -> Text,
        error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        enqueued_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        conversation -> Nullable<Text>,
        waited_on -> Bool,
    }
}

diesel::table! {
    run_steps (id) {
        id -> BigInt,
        run_id -> BigInt,
        position -> Integer,
        action -> Text,
        status -> Text,
        inputs -> Text,
        outputs -> Nullable<Text>,
        error -> Nullable<Text>,
        attempt -> Integer,
        duration_ms -> BigInt,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(inbox -> providers (provider_id));
diesel::joinable!(runs -> bundles (bundle_id));
diesel::joinable!(runs -> inbox (inbox_id));
diesel::joinable!(run_steps -> runs (run_id));

diesel::allow_tables_to_appear_in_same_query!(admins, providers, inbox, bundles, runs, run_steps);

diesel::table! {
    poll_leases (provider_id) {
        provider_id -> BigInt,
        holder -> Text,
        lease_until -> Timestamp,
    }
}

diesel::table! {
    workers (id) {
        id -> Text,
        hostname -> Text,
        pid -> BigInt,
        embedded -> Bool,
        started_at -> Timestamp,
        last_seen -> Timestamp,
    }
}

diesel::table! {
    admin_sessions (token_hash) {
        token_hash -> Text,
        admin_id -> BigInt,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    setup_codes (code_hash) {
        code_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    locks (name) {
        name -> Text,
        holder -> Text,
        lock_until -> Timestamp,
    }
}

diesel::joinable!(admin_sessions -> admins (admin_id));
diesel::allow_tables_to_appear_in_same_query!(admins, admin_sessions);

diesel::table! {
    hook_deliveries (provider_id) {
        provider_id -> BigInt,
        last_ok_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        last_error_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mg_replies (id) {
        id -> BigInt,
        provider_id -> BigInt,
        dedup_key -> Text,
        mg_message_id -> Nullable<BigInt>,
        channel_id -> BigInt,
        external_user_id -> Text,
        kind -> Text,
        content -> Text,
        payload -> Text,
        messenger_provider_id -> Nullable<BigInt>,
        chat_id -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        error -> Nullable<Text>,
        mg_error -> Nullable<Text>,
        external_message_id -> Nullable<Text>,
        send_started_at -> Nullable<Timestamp>,
        answer -> Nullable<Text>,
        acked_at -> Nullable<Timestamp>,
        read_at -> Nullable<Timestamp>,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        enqueued_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    mg_routes (provider_id, channel_id, external_user_id) {
        provider_id -> BigInt,
        channel_id -> BigInt,
        external_user_id -> Text,
        messenger_provider_id -> BigInt,
        chat_id -> Text,
        customer_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    alert_settings (id) {
        id -> BigInt,
        settings -> Text,
        secrets -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    alerts (id) {
        id -> BigInt,
        kind -> Text,
        subject_id -> BigInt,
        subject_name -> Text,
        reason -> Nullable<Text>,
        count -> Integer,
        status -> Text,
        attempts -> Integer,
        error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        enqueued_at -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}
