//! Diesel's view of the tables in `migrations/` (identical on SQLite and PostgreSQL).

diesel::table! {
    tenants (id) {
        id -> Text,
        name -> Text,
        password_policy -> Text,
        default_role -> Text,
        scim_enabled -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        user_name -> Text,
        user_name_lower -> Text,
        external_id -> Nullable<Text>,
        name_formatted -> Nullable<Text>,
        family_name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        middle_name -> Nullable<Text>,
        honorific_prefix -> Nullable<Text>,
        honorific_suffix -> Nullable<Text>,
        display_name -> Nullable<Text>,
        nick_name -> Nullable<Text>,
        profile_url -> Nullable<Text>,
        title -> Nullable<Text>,
        user_type -> Nullable<Text>,
        preferred_language -> Nullable<Text>,
        locale -> Nullable<Text>,
        timezone -> Nullable<Text>,
        active -> Bool,
        emails -> Text,
        role -> Nullable<Text>,
        attributes -> Text,
        password_hash -> Nullable<Text>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        active_assigned -> Bool,
    }
}

diesel::table! {
    user_emails (tenant_id, value_lower, user_id) {
        tenant_id -> Text,
        value_lower -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    groups (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        display_name -> Text,
        display_name_lower -> Text,
        external_id -> Nullable<Text>,
        member_count -> BigInt,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    group_members (tenant_id, group_id, user_id) {
        tenant_id -> Text,
        group_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    group_roles (tenant_id, group_id) {
        tenant_id -> Text,
        group_id -> Text,
        role -> Text,
        priority -> BigInt,
    }
}

diesel::table! {
    tokens (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        kind -> Text,
        prefix -> Text,
        secret_hash -> Text,
        description -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        read_only -> Bool,
        user_id -> Nullable<Text>,
        basic_username -> Nullable<Text>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    roles (tenant_id, name) {
        tenant_id -> Text,
        name -> Text,
        description -> Text,
        permissions -> Text,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    tenants,
    users,
    user_emails,
    groups,
    group_members,
    group_roles,
    tokens,
    roles
);
