//! proto ⇄ domain conversions.

use base64::Engine;
use roster_proto::v1 as pb;
use roster_proto::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::domain::{
    self, DomainError, EffectiveRole, Email, Group, Member, PasswordPolicy, PersonName, Position,
    Role, RoleSource, ScimType, Sort, SortAttr, SortValue, Tenant, Token, TokenKind, User,
    UserInput,
};

pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// The etag of a version. Clients may send it back bare (`3`), quoted (`"3"`) or weak
/// (`W/"3"`).
pub fn etag(version: i64) -> String {
    version.to_string()
}

/// Parses an etag precondition; `None` when none was given. An etag that is not one of ours
/// can never match.
pub fn expected_version(etag: &str) -> Result<Option<i64>, DomainError> {
    let e = etag.trim();
    if e.is_empty() || e == "*" {
        return Ok(None);
    }
    let e = e.strip_prefix("W/").unwrap_or(e).trim_matches('"');
    e.parse::<i64>()
        .map(Some)
        .map_err(|_| DomainError::PreconditionFailed {
            expected: etag.to_owned(),
        })
}

pub fn user_input(u: pb::User) -> UserInput {
    let name = u.name.unwrap_or_default();
    UserInput {
        user_name: u.user_name,
        external_id: u.external_id,
        name: PersonName {
            formatted: name.formatted,
            family_name: name.family_name,
            given_name: name.given_name,
            middle_name: name.middle_name,
            honorific_prefix: name.honorific_prefix,
            honorific_suffix: name.honorific_suffix,
        },
        display_name: u.display_name,
        nick_name: u.nick_name,
        profile_url: u.profile_url,
        title: u.title,
        user_type: u.user_type,
        preferred_language: u.preferred_language,
        locale: u.locale,
        timezone: u.timezone,
        active: u.active && !u.active_unassigned,
        active_assigned: !u.active_unassigned,
        emails: u
            .emails
            .into_iter()
            .map(|e| Email {
                value: e.value,
                kind: e.r#type,
                primary: e.primary,
                display: e.display,
            })
            .collect(),
        role: u.role.filter(|r| !r.is_empty()),
        attributes: if u.attributes_json.trim().is_empty() {
            "{}".to_owned()
        } else {
            u.attributes_json
        },
    }
}

/// A user, with its effective role under the tenant's `default_role`.
pub fn user(u: User, default_role: &str) -> pb::User {
    let effective = u.effective_role(default_role);
    let a = u.attrs;
    let name = if a.name.is_empty() {
        None
    } else {
        Some(pb::PersonName {
            formatted: a.name.formatted,
            family_name: a.name.family_name,
            given_name: a.name.given_name,
            middle_name: a.name.middle_name,
            honorific_prefix: a.name.honorific_prefix,
            honorific_suffix: a.name.honorific_suffix,
        })
    };
    pb::User {
        id: u.id,
        user_name: a.user_name,
        external_id: a.external_id,
        name,
        display_name: a.display_name,
        nick_name: a.nick_name,
        profile_url: a.profile_url,
        title: a.title,
        user_type: a.user_type,
        preferred_language: a.preferred_language,
        locale: a.locale,
        timezone: a.timezone,
        active: a.active,
        active_unassigned: !a.active_assigned,
        emails: a
            .emails
            .into_iter()
            .map(|e| pb::Email {
                value: e.value,
                r#type: e.kind,
                primary: e.primary,
                display: e.display,
            })
            .collect(),
        effective_role: effective.role,
        role_source: role_source(effective.source) as i32,
        role_group_id: effective.group_id.unwrap_or_default(),
        role: a.role,
        attributes_json: a.attributes,
        password: None,
        groups: u
            .groups
            .into_iter()
            .map(|g| pb::GroupRef {
                id: g.id,
                display_name: g.display_name,
            })
            .collect(),
        etag: etag(u.version),
        create_time: Some(timestamp(u.created)),
        update_time: Some(timestamp(u.updated)),
    }
}

pub fn role_source(s: RoleSource) -> pb::RoleSource {
    match s {
        RoleSource::Attribute => pb::RoleSource::Attribute,
        RoleSource::Group => pb::RoleSource::Group,
        RoleSource::Default => pb::RoleSource::Default,
    }
}

pub fn effective_role(user_id: String, active: bool, e: EffectiveRole) -> pb::EffectiveRole {
    pb::EffectiveRole {
        user_id,
        role: e.role,
        source: role_source(e.source) as i32,
        group_id: e.group_id.unwrap_or_default(),
        active,
    }
}

pub fn group(g: Group) -> pb::Group {
    pb::Group {
        id: g.id,
        display_name: g.display_name,
        external_id: g.external_id,
        members: g
            .members
            .unwrap_or_default()
            .into_iter()
            .map(member)
            .collect(),
        member_count: g.member_count,
        etag: etag(g.version),
        create_time: Some(timestamp(g.created)),
        update_time: Some(timestamp(g.updated)),
    }
}

pub fn member(m: Member) -> pb::Member {
    pb::Member {
        user_id: m.user_id,
        display: m.display,
    }
}

pub fn member_op(op: pb::MemberOperation) -> Result<domain::MemberOp, DomainError> {
    use pb::member_operation::Kind;
    Ok(match Kind::try_from(op.kind).unwrap_or(Kind::Unspecified) {
        Kind::Add => domain::MemberOp::Add(op.user_ids),
        Kind::Remove => domain::MemberOp::Remove(op.user_ids),
        Kind::RemoveAll => domain::MemberOp::RemoveAll,
        Kind::Replace => domain::MemberOp::Replace(op.user_ids),
        Kind::Unspecified => {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                "member operation kind is required",
            ));
        }
    })
}

pub fn with_members(view: i32) -> bool {
    pb::GroupView::try_from(view) == Ok(pb::GroupView::Full)
}

/// A tenant; `scim_base_url` is where its identity provider sends SCIM requests.
pub fn tenant(t: Tenant, scim_base_url: &str) -> pb::Tenant {
    pb::Tenant {
        id: t.id,
        name: t.name,
        password_policy: password_policy(t.password_policy) as i32,
        create_time: Some(timestamp(t.created)),
        scim_enabled: t.scim_enabled,
        scim_base_url: scim_base_url.to_owned(),
        default_role: t.default_role,
    }
}

pub fn role(r: Role, default_role: &str) -> pb::Role {
    pb::Role {
        is_default: r.name == default_role,
        name: r.name,
        description: r.description,
        permissions: r.permissions,
        built_in: r.built_in,
    }
}

pub fn password_policy(p: PasswordPolicy) -> pb::PasswordPolicy {
    match p {
        PasswordPolicy::Ignore => pb::PasswordPolicy::Ignore,
        PasswordPolicy::Hash => pb::PasswordPolicy::Hash,
    }
}

pub fn password_policy_from(p: i32) -> PasswordPolicy {
    match pb::PasswordPolicy::try_from(p) {
        Ok(pb::PasswordPolicy::Hash) => PasswordPolicy::Hash,
        _ => PasswordPolicy::Ignore,
    }
}

pub fn token_kind(k: TokenKind) -> pb::TokenKind {
    match k {
        TokenKind::Scim => pb::TokenKind::Scim,
        TokenKind::Admin => pb::TokenKind::Admin,
        TokenKind::Operator => pb::TokenKind::Operator,
        TokenKind::Service => pb::TokenKind::Service,
    }
}

/// A requested kind; unspecified or unknown is INVALID_ARGUMENT (never a silent default).
pub fn token_kind_from(k: i32) -> Result<TokenKind, DomainError> {
    match pb::TokenKind::try_from(k) {
        Ok(pb::TokenKind::Scim) => Ok(TokenKind::Scim),
        Ok(pb::TokenKind::Admin) => Ok(TokenKind::Admin),
        Ok(pb::TokenKind::Operator) => Ok(TokenKind::Operator),
        Ok(pb::TokenKind::Service) => Ok(TokenKind::Service),
        _ => Err(DomainError::invalid(
            ScimType::InvalidValue,
            "kind must be TOKEN_KIND_SCIM, TOKEN_KIND_SERVICE, TOKEN_KIND_ADMIN or TOKEN_KIND_OPERATOR",
        )),
    }
}

pub fn token(t: Token) -> pb::Token {
    pb::Token {
        id: t.id,
        tenant: t.tenant_name,
        kind: token_kind(t.kind) as i32,
        prefix: t.prefix,
        description: t.description,
        create_time: Some(timestamp(t.created)),
        revoked: t.revoked,
        expire_time: t.expires.map(timestamp),
        revoke_time: t.revoked_at.map(timestamp),
        created_by: t.created_by,
        read_only: t.read_only,
        last_use_time: t.last_used.map(timestamp),
        user_id: t.user_id.unwrap_or_default(),
        basic_username: t.basic_username.unwrap_or_default(),
    }
}

const PAGE_TOKEN_PREFIX: &str = "k1:";

/// An opaque page token for "continue after this key".
pub fn page_token(after: Option<String>) -> String {
    after
        .map(|key| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("{PAGE_TOKEN_PREFIX}{key}"))
        })
        .unwrap_or_default()
}

pub fn parse_page_token(token: &str) -> Result<Option<String>, DomainError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || DomainError::invalid(ScimType::InvalidValue, "invalid page_token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(PAGE_TOKEN_PREFIX)
        .map(|k| Some(k.to_owned()))
        .ok_or_else(bad)
}

/// What a list page token is bound to: the tenant, the resource type, the filter and the sort
/// it was issued for (a short hash of them).
pub fn token_scope(tenant_id: &str, resource: &str, filter: &str, sort: Sort) -> String {
    let mut h = Sha256::new();
    for part in [tenant_id, resource, filter.trim(), &format!("{sort:?}")] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

const LIST_TOKEN_VERSION: &str = "l1";
const LIST_TOKEN_CHECK: &[u8] = b"roster list page token\0";
const CHECK_LEN: usize = 8;

fn list_token_check(payload: &[u8]) -> [u8; CHECK_LEN] {
    let mut h = Sha256::new();
    h.update(LIST_TOKEN_CHECK);
    h.update(payload);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&h.finalize()[..CHECK_LEN]);
    out
}

/// An opaque list page token: "continue after (or, `backward`, before) this position", for the
/// query whose [`token_scope`] is `scope`. URL-safe base64 (RFC 3986 unreserved characters, as
/// RFC 9865 asks of a cursor), with a checksum so that a damaged token is refused.
pub fn list_token(scope: &str, position: &Position, backward: bool) -> String {
    let key = match &position.key {
        SortValue::Null => serde_json::Value::Null,
        SortValue::Text(s) => serde_json::Value::String(s.clone()),
        SortValue::Bool(b) => serde_json::Value::Bool(*b),
        SortValue::Time(t) => {
            serde_json::json!({ "t": t.assume_utc().unix_timestamp_nanos().to_string() })
        }
    };
    let payload =
        serde_json::json!([LIST_TOKEN_VERSION, scope, backward, key, position.id]).to_string();
    let mut bytes = payload.into_bytes();
    let check = list_token_check(&bytes);
    bytes.extend_from_slice(&check);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses a list page token issued for `scope` and sorted by `sort`: the position and whether
/// to read backward. Empty: the first page. Anything else, or a token of another query, is
/// `invalidCursor`.
pub fn parse_list_token(
    token: &str,
    scope: &str,
    sort: Sort,
) -> Result<Option<(Position, bool)>, DomainError> {
    let token = token.trim();
    if token.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        DomainError::invalid(
            ScimType::InvalidCursor,
            format!("invalid page token: {why}"),
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad("not one of ours"))?;
    if bytes.len() <= CHECK_LEN {
        return Err(bad("not one of ours"));
    }
    let (payload, check) = bytes.split_at(bytes.len() - CHECK_LEN);
    if list_token_check(payload) != check {
        return Err(bad("not one of ours"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| bad("not one of ours"))?;
    let parts = value.as_array().map(Vec::as_slice).unwrap_or_default();
    let [version, token_scope, backward, key, id] = parts else {
        return Err(bad("not one of ours"));
    };
    if version.as_str() != Some(LIST_TOKEN_VERSION) {
        return Err(bad("not one of ours"));
    }
    if token_scope.as_str() != Some(scope) {
        return Err(bad(
            "it was issued for another query (filter, sort or resource type)",
        ));
    }
    let (Some(backward), Some(id)) = (backward.as_bool(), id.as_str()) else {
        return Err(bad("not one of ours"));
    };
    let key = match (sort.attr, key) {
        (SortAttr::Id, serde_json::Value::Null) => SortValue::Null,
        (SortAttr::Id, _) => return Err(bad("not one of ours")),
        (attr, serde_json::Value::Null) if attr.nullable() => SortValue::Null,
        (SortAttr::Active, serde_json::Value::Bool(b)) => SortValue::Bool(*b),
        (SortAttr::Created | SortAttr::Modified, serde_json::Value::Object(o)) => {
            let nanos: i128 = o
                .get("t")
                .and_then(serde_json::Value::as_str)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| bad("not one of ours"))?;
            let t = OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .map_err(|_| bad("not one of ours"))?;
            SortValue::Time(time::PrimitiveDateTime::new(t.date(), t.time()))
        }
        (
            SortAttr::UserName
            | SortAttr::FamilyName
            | SortAttr::GivenName
            | SortAttr::DisplayName
            | SortAttr::ExternalId
            | SortAttr::Title,
            serde_json::Value::String(s),
        ) => SortValue::Text(s.clone()),
        _ => return Err(bad("not one of ours")),
    };
    Ok(Some((
        Position {
            key,
            id: id.to_owned(),
        },
        backward,
    )))
}

/// Page sizes: 0 means [`DEFAULT_PAGE_SIZE`]; at most [`MAX_PAGE_SIZE`].
pub fn page_size(requested: i32) -> Result<i64, DomainError> {
    match requested {
        0 => Ok(i64::from(DEFAULT_PAGE_SIZE)),
        n if n < 0 => Err(DomainError::invalid(
            ScimType::InvalidValue,
            "page_size must not be negative",
        )),
        n => Ok(i64::from(n.min(MAX_PAGE_SIZE))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_parse_in_every_spelling() {
        for e in ["7", "\"7\"", "W/\"7\""] {
            assert_eq!(expected_version(e).ok(), Some(Some(7)), "{e}");
        }
        assert_eq!(expected_version("").ok(), Some(None));
        assert!(matches!(
            expected_version("nope"),
            Err(DomainError::PreconditionFailed { .. })
        ));
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = page_token(Some("0190-abc".into()));
        assert_eq!(parse_page_token(&t).ok(), Some(Some("0190-abc".to_owned())));
        assert_eq!(page_token(None), "");
        assert!(parse_page_token("!!").is_err());
        assert!(parse_page_token("aGVsbG8").is_err());
    }

    fn sort(attr: SortAttr) -> Sort {
        Sort {
            attr,
            descending: false,
        }
    }

    #[test]
    fn list_tokens_round_trip_every_key_kind() {
        let t = time::macros::datetime!(2026-11-24 10:00:00.123456);
        let cases = [
            (SortAttr::Id, SortValue::Null),
            (SortAttr::UserName, SortValue::Text("ada:\"x\"".into())),
            (SortAttr::FamilyName, SortValue::Null),
            (SortAttr::Active, SortValue::Bool(true)),
            (SortAttr::Created, SortValue::Time(t)),
        ];
        for (attr, key) in cases {
            let scope = token_scope("t", "users", "", sort(attr));
            let position = Position {
                key,
                id: "0190-abc".into(),
            };
            for backward in [false, true] {
                let token = list_token(&scope, &position, backward);
                assert!(
                    token
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{token}"
                );
                let parsed = parse_list_token(&token, &scope, sort(attr)).unwrap();
                assert_eq!(parsed, Some((position.clone(), backward)));
            }
        }
        assert_eq!(parse_list_token("", "x", sort(SortAttr::Id)).unwrap(), None);
    }

    #[test]
    fn list_tokens_are_bound_to_their_query_and_checked() {
        let s = sort(SortAttr::UserName);
        let scope = token_scope("t", "users", "active eq true", s);
        let token = list_token(
            &scope,
            &Position {
                key: SortValue::Text("ada".into()),
                id: "1".into(),
            },
            false,
        );
        let invalid = |r: Result<Option<(Position, bool)>, DomainError>| {
            matches!(
                r,
                Err(DomainError::Invalid {
                    scim_type: ScimType::InvalidCursor,
                    ..
                })
            )
        };
        // Another filter, tenant, resource type or sort.
        for other in [
            token_scope("t", "users", "active eq false", s),
            token_scope("u", "users", "active eq true", s),
            token_scope("t", "groups", "active eq true", s),
            token_scope(
                "t",
                "users",
                "active eq true",
                Sort {
                    descending: true,
                    ..s
                },
            ),
        ] {
            assert!(invalid(parse_list_token(&token, &other, s)));
        }
        // A damaged token, an old-style token, garbage.
        let mut damaged = token.clone().into_bytes();
        damaged[3] = if damaged[3] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap();
        for bad in [
            damaged.as_str(),
            &page_token(Some("1".into())),
            "!!",
            "aGVsbG8",
        ] {
            assert!(invalid(parse_list_token(bad, &scope, s)), "{bad}");
        }
    }
}
