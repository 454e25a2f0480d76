//! Diesel table definitions shared by both backends (see `migrations/`).

diesel::table! {
    user (id) {
        id -> Text,
        name -> Text,
        email -> Text,
        email_verified -> Nullable<Bool>,
        image -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        role -> Text,
        banned -> Bool,
        ban_reason -> Nullable<Text>,
        ban_expires -> Nullable<Timestamp>,
    }
}

diesel::table! {
    session (id) {
        id -> Text,
        expires_at -> Timestamp,
        token_hash -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        user_id -> Text,
    }
}

diesel::table! {
    account (id) {
        id -> Text,
        account_id -> Text,
        provider_id -> Text,
        user_id -> Text,
        access_token -> Nullable<Text>,
        refresh_token -> Nullable<Text>,
        id_token -> Nullable<Text>,
        access_token_expires_at -> Nullable<Timestamp>,
        refresh_token_expires_at -> Nullable<Timestamp>,
        scope -> Nullable<Text>,
        password -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    verification (id) {
        id -> Text,
        identifier -> Text,
        value -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        user_id -> Nullable<Text>,
        purpose -> Text,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    signing_key (id) {
        id -> Text,
        algorithm -> Text,
        public_key -> Text,
        private_key -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    rate_limit (key) {
        key -> Text,
        count -> Integer,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sign_in_failure (key) {
        key -> Text,
        failures -> Integer,
        locked_until -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(session -> user (user_id));
diesel::joinable!(account -> user (user_id));
diesel::joinable!(verification -> user (user_id));
diesel::allow_tables_to_appear_in_same_query!(user, session, account, verification, mail_outbox);

diesel::table! {
    audit_event (id) {
        id -> Text,
        created_at -> Timestamp,
        #[sql_name = "type"]
        kind -> Text,
        actor_user_id -> Nullable<Text>,
        subject_user_id -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    apexkit_migration (version) {
        version -> Text,
        name -> Text,
        checksum -> Text,
        recorded_at -> Timestamp,
    }
}

// issue 16: two-factor authentication and passwordless sign-in codes.
diesel::table! {
    two_factor (user_id) {
        user_id -> Text,
        secret -> Text,
        enabled -> Bool,
        last_step -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    two_factor_backup_code (id) {
        id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    two_factor_challenge (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        remember_me -> Bool,
        failures -> Integer,
        otp_hash -> Nullable<Text>,
        otp_expires_at -> Nullable<Timestamp>,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    trusted_device (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    email_code (email) {
        email -> Text,
        code_hash -> Text,
        attempts -> Integer,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}
diesel::table! {
    passkey (id) {
        id -> Text,
        name -> Nullable<Text>,
        public_key -> Text,
        user_id -> Text,
        credential_id -> Text,
        counter -> BigInt,
        device_type -> Text,
        backed_up -> Bool,
        transports -> Nullable<Text>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        aaguid -> Nullable<Text>,
    }
}

diesel::joinable!(passkey -> user (user_id));
diesel::allow_tables_to_appear_in_same_query!(passkey, user);
