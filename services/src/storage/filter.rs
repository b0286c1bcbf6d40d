//! SCIM filters (RFC 7644 §3.4.2.2), parsed by `scim_v2`, compiled to SQL with bound values.
//!
//! Attribute names and operators are case-insensitive; string comparisons honour each
//! attribute's `caseExact` (`userName` and `emails` compare without case through their stored
//! lower-case keys, which are indexed; `id` and `externalId` compare exactly). Filters are
//! evaluated by the database, never in memory.

use diesel::dsl::not;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp};
use time::PrimitiveDateTime;

pub use scim_v2::filter::Filter;

use super::MultiBackend;
use super::schema::{group_members, groups, user_emails, users};
use crate::domain::{DomainError, ScimType};

/// Longest filter accepted, in bytes (the parser also bounds depth and terms).
pub const MAX_FILTER_LEN: usize = 8192;

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:user";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:group";
const ROSTER_URN: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:user";

diesel::define_sql_function!(fn lower(x: Nullable<Text>) -> Nullable<Text>);

type Expr<T> = Box<dyn BoxableExpression<T, MultiBackend, SqlType = Bool>>;

/// Parses a filter; an empty string means "no filter".
pub fn parse(raw: &str) -> Result<Option<Filter>, DomainError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > MAX_FILTER_LEN {
        return Err(DomainError::invalid(
            ScimType::InvalidFilter,
            format!("the filter is longer than {MAX_FILTER_LEN} bytes"),
        ));
    }
    raw.parse::<Filter>()
        .map(Some)
        .map_err(|e| DomainError::invalid(ScimType::InvalidFilter, format!("invalid filter: {e}")))
}

fn invalid(detail: String) -> DomainError {
    DomainError::invalid(ScimType::InvalidFilter, detail)
}

/// The attribute a path names, lower-cased, without the core schema URN.
fn attr_name(path: &AttrPath, core_urn: &str) -> Result<String, DomainError> {
    let base = match &path.uri {
        None => String::new(),
        Some(uri) if uri.eq_ignore_ascii_case(core_urn) => String::new(),
        Some(uri) if uri.eq_ignore_ascii_case(ROSTER_URN) && core_urn == USER_URN => {
            "roster:".to_owned()
        }
        Some(uri) => return Err(invalid(format!("filtering on {uri} is not supported"))),
    };
    let mut name = format!("{base}{}", path.name.to_ascii_lowercase());
    if let Some(sub) = &path.sub_attr {
        name.push('.');
        name.push_str(&sub.to_ascii_lowercase());
    }
    Ok(name)
}

fn string_value(attr: &str, value: &CompValue) -> Result<String, DomainError> {
    match value {
        CompValue::Str(s) => Ok(s.clone()),
        other => Err(invalid(format!(
            "{attr} compares with a string, not {other}"
        ))),
    }
}

fn time_value(attr: &str, value: &CompValue) -> Result<PrimitiveDateTime, DomainError> {
    let s = string_value(attr, value)?;
    let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            invalid(format!(
                "{attr} compares with an RFC 3339 dateTime, not {s:?}"
            ))
        })?
        .to_offset(time::UtcOffset::UTC);
    Ok(PrimitiveDateTime::new(t.date(), t.time()))
}

/// `%`, `_` and `\` are literal in SCIM values.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn pattern(op: &CompareOp, v: &str) -> Option<String> {
    let v = escape_like(v);
    match op {
        CompareOp::Co => Some(format!("%{v}%")),
        CompareOp::Sw => Some(format!("{v}%")),
        CompareOp::Ew => Some(format!("%{v}")),
        _ => None,
    }
}

/// A comparison on a NOT NULL text expression.
macro_rules! text_cmp {
    ($col:expr, $op:expr, $v:expr) => {{
        let v: String = $v;
        let e: Expr<_> = match (&$op, pattern(&$op, &v)) {
            (_, Some(p)) => Box::new($col.like(p).escape('\\')),
            (CompareOp::Eq, _) => Box::new($col.eq(v)),
            (CompareOp::Ne, _) => Box::new($col.ne(v)),
            (CompareOp::Gt, _) => Box::new($col.gt(v)),
            (CompareOp::Ge, _) => Box::new($col.ge(v)),
            (CompareOp::Lt, _) => Box::new($col.lt(v)),
            (CompareOp::Le, _) => Box::new($col.le(v)),
            _ => Box::new($col.eq(v)),
        };
        e
    }};
}

/// A comparison on a nullable text column: an absent value matches only `ne`.
macro_rules! nullable_text_cmp {
    ($col:expr, $op:expr, $v:expr) => {{
        let inner = text_cmp!($col.assume_not_null(), $op, $v);
        let e: Expr<_> = if matches!($op, CompareOp::Ne) {
            Box::new($col.is_null().or(inner))
        } else {
            Box::new($col.is_not_null().and(inner))
        };
        e
    }};
}

/// A case-insensitive comparison on a nullable text column.
macro_rules! nullable_ci_cmp {
    ($col:expr, $op:expr, $v:expr) => {{
        let v: String = $v;
        let inner = text_cmp!(lower($col).assume_not_null(), $op, v.to_lowercase());
        let e: Expr<_> = if matches!($op, CompareOp::Ne) {
            Box::new($col.is_null().or(inner))
        } else {
            Box::new($col.is_not_null().and(inner))
        };
        e
    }};
}

macro_rules! time_cmp {
    ($col:expr, $op:expr, $v:expr, $attr:expr) => {{
        let t = time_value($attr, $v)?;
        let e: Expr<_> = match $op {
            CompareOp::Eq => Box::new($col.eq(t)),
            CompareOp::Ne => Box::new($col.ne(t)),
            CompareOp::Gt => Box::new($col.gt(t)),
            CompareOp::Ge => Box::new($col.ge(t)),
            CompareOp::Lt => Box::new($col.lt(t)),
            CompareOp::Le => Box::new($col.le(t)),
            other => {
                return Err(invalid(format!(
                    "{} does not apply to the dateTime {}",
                    other, $attr
                )));
            }
        };
        e
    }};
}

fn always(value: bool) -> Expr<users::table> {
    Box::new(diesel::dsl::sql::<Bool>(if value { "1=1" } else { "1=0" }))
}

fn always_group(value: bool) -> Expr<groups::table> {
    Box::new(diesel::dsl::sql::<Bool>(if value { "1=1" } else { "1=0" }))
}

/// The value of a filter that is exactly `<attribute> eq "<value>"` on the named attribute of
/// the core schema (compared without letter case), e.g. Okta's `userName eq "…"` lookup: such a
/// filter is a point lookup on a unique index, served without a dynamic query.
pub fn unique_eq<'f>(f: &'f Filter, attribute: &str) -> Option<&'f str> {
    match f {
        Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(v)))
            if path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case(attribute)
                && path.uri.as_deref().is_none_or(|u| {
                    u.eq_ignore_ascii_case(USER_URN) || u.eq_ignore_ascii_case(GROUP_URN)
                }) =>
        {
            Some(v)
        }
        _ => None,
    }
}

/// Compiles a filter over users of `tenant_id`.
pub fn users(f: &Filter, tenant_id: &str) -> Result<Expr<users::table>, DomainError> {
    Ok(match f {
        Filter::Attr(exp) => user_attr(exp, tenant_id)?,
        Filter::Not(inner) => Box::new(not(users(inner, tenant_id)?)),
        Filter::And(items) => {
            let mut it = items.as_slice().iter();
            let mut acc = match it.next() {
                Some(first) => users(first, tenant_id)?,
                None => always(true),
            };
            for item in it {
                acc = Box::new(acc.and(users(item, tenant_id)?));
            }
            acc
        }
        Filter::Or(items) => {
            let mut it = items.as_slice().iter();
            let mut acc = match it.next() {
                Some(first) => users(first, tenant_id)?,
                None => always(false),
            };
            for item in it {
                acc = Box::new(acc.or(users(item, tenant_id)?));
            }
            acc
        }
        Filter::ValuePath(vp) => {
            return Err(invalid(format!(
                "value filters such as {}[...] are not supported yet",
                vp.attr
            )));
        }
    })
}

fn user_attr(exp: &AttrExp, tenant_id: &str) -> Result<Expr<users::table>, DomainError> {
    let (path, cmp) = match exp {
        AttrExp::Present(path) => (path, None),
        AttrExp::Comparison(path, op, value) => (path, Some((op, value))),
    };
    let attr = attr_name(path, USER_URN)?;
    let Some((op, value)) = cmp else {
        return user_present(&attr, tenant_id);
    };
    if matches!(value, CompValue::Null) {
        // `attr eq null` is "not present"; `ne null` is "present".
        let present = user_present(&attr, tenant_id)?;
        return Ok(match op {
            CompareOp::Eq => Box::new(not(present)),
            CompareOp::Ne => present,
            _ => return Err(invalid(format!("{op} null is not a comparison"))),
        });
    }
    macro_rules! nullable_text {
        ($col:expr) => {
            nullable_ci_cmp!($col, *op, string_value(&attr, value)?)
        };
    }
    Ok(match attr.as_str() {
        "id" => text_cmp!(users::id, *op, string_value(&attr, value)?),
        "username" => text_cmp!(
            users::user_name_lower,
            *op,
            string_value(&attr, value)?.to_lowercase()
        ),
        "externalid" => nullable_text_cmp!(users::external_id, *op, string_value(&attr, value)?),
        "displayname" => nullable_text!(users::display_name),
        "nickname" => nullable_text!(users::nick_name),
        "title" => nullable_text!(users::title),
        "usertype" => nullable_text!(users::user_type),
        "locale" => nullable_text!(users::locale),
        "preferredlanguage" => nullable_text!(users::preferred_language),
        "timezone" => nullable_text!(users::timezone),
        "profileurl" => nullable_text!(users::profile_url),
        "name.formatted" => nullable_text!(users::name_formatted),
        "name.familyname" => nullable_text!(users::family_name),
        "name.givenname" => nullable_text!(users::given_name),
        "name.middlename" => nullable_text!(users::middle_name),
        "name.honorificprefix" => nullable_text!(users::honorific_prefix),
        "name.honorificsuffix" => nullable_text!(users::honorific_suffix),
        "roster:role" => nullable_text!(users::role),
        "active" => {
            let b = match value {
                CompValue::True => true,
                CompValue::False => false,
                CompValue::Str(s) if s.eq_ignore_ascii_case("true") => true,
                CompValue::Str(s) if s.eq_ignore_ascii_case("false") => false,
                other => {
                    return Err(invalid(format!(
                        "active compares with a boolean, not {other}"
                    )));
                }
            };
            match op {
                CompareOp::Eq => Box::new(users::active.eq(b)),
                CompareOp::Ne => Box::new(users::active.ne(b)),
                other => return Err(invalid(format!("{other} does not apply to a boolean"))),
            }
        }
        "emails" | "emails.value" => {
            let v = string_value(&attr, value)?.to_lowercase();
            // Concrete (unboxed) subqueries: a boxed expression cannot nest in a subselect
            // of the backend-neutral connection.
            macro_rules! having_email {
                ($pred:expr) => {
                    users::id.eq_any(
                        user_emails::table
                            .filter(user_emails::tenant_id.eq(tenant_id.to_owned()))
                            .filter($pred)
                            .select(user_emails::user_id),
                    )
                };
            }
            let col = user_emails::value_lower;
            match (op, pattern(op, &v)) {
                (_, Some(p)) => Box::new(having_email!(col.like(p).escape('\\'))),
                (CompareOp::Eq, _) => Box::new(having_email!(col.eq(v))),
                (CompareOp::Ne, _) => Box::new(not(having_email!(col.eq(v)))),
                (CompareOp::Gt, _) => Box::new(having_email!(col.gt(v))),
                (CompareOp::Ge, _) => Box::new(having_email!(col.ge(v))),
                (CompareOp::Lt, _) => Box::new(having_email!(col.lt(v))),
                (CompareOp::Le, _) => Box::new(having_email!(col.le(v))),
                (other, None) => return Err(invalid(format!("{other} does not apply to emails"))),
            }
        }
        "groups" | "groups.value" => {
            let v = string_value(&attr, value)?;
            let in_group = users::id.eq_any(
                group_members::table
                    .filter(group_members::tenant_id.eq(tenant_id.to_owned()))
                    .filter(group_members::group_id.eq(v))
                    .select(group_members::user_id),
            );
            match op {
                CompareOp::Eq => Box::new(in_group),
                CompareOp::Ne => Box::new(not(in_group)),
                other => return Err(invalid(format!("{other} does not apply to groups"))),
            }
        }
        "meta.created" => time_cmp!(users::created_at, op, value, &attr),
        "meta.lastmodified" => time_cmp!(users::updated_at, op, value, &attr),
        _ => return Err(invalid(format!("cannot filter users on {path}"))),
    })
}

fn user_present(attr: &str, tenant_id: &str) -> Result<Expr<users::table>, DomainError> {
    Ok(match attr {
        "id" | "username" | "active" | "meta.created" | "meta.lastmodified" => always(true),
        "externalid" => Box::new(users::external_id.is_not_null()),
        "displayname" => Box::new(users::display_name.is_not_null()),
        "nickname" => Box::new(users::nick_name.is_not_null()),
        "title" => Box::new(users::title.is_not_null()),
        "usertype" => Box::new(users::user_type.is_not_null()),
        "locale" => Box::new(users::locale.is_not_null()),
        "preferredlanguage" => Box::new(users::preferred_language.is_not_null()),
        "timezone" => Box::new(users::timezone.is_not_null()),
        "profileurl" => Box::new(users::profile_url.is_not_null()),
        "name.formatted" => Box::new(users::name_formatted.is_not_null()),
        "name.familyname" => Box::new(users::family_name.is_not_null()),
        "name.givenname" => Box::new(users::given_name.is_not_null()),
        "name.middlename" => Box::new(users::middle_name.is_not_null()),
        "name.honorificprefix" => Box::new(users::honorific_prefix.is_not_null()),
        "name.honorificsuffix" => Box::new(users::honorific_suffix.is_not_null()),
        "roster:role" => Box::new(users::role.is_not_null()),
        "emails" | "emails.value" => Box::new(
            users::id.eq_any(
                user_emails::table
                    .filter(user_emails::tenant_id.eq(tenant_id.to_owned()))
                    .select(user_emails::user_id),
            ),
        ),
        "groups" | "groups.value" => Box::new(
            users::id.eq_any(
                group_members::table
                    .filter(group_members::tenant_id.eq(tenant_id.to_owned()))
                    .select(group_members::user_id),
            ),
        ),
        other => return Err(invalid(format!("cannot filter users on {other}"))),
    })
}

/// Compiles a filter over groups of `tenant_id`.
pub fn groups(f: &Filter, tenant_id: &str) -> Result<Expr<groups::table>, DomainError> {
    Ok(match f {
        Filter::Attr(exp) => group_attr(exp, tenant_id)?,
        Filter::Not(inner) => Box::new(not(groups(inner, tenant_id)?)),
        Filter::And(items) => {
            let mut it = items.as_slice().iter();
            let mut acc = match it.next() {
                Some(first) => groups(first, tenant_id)?,
                None => always_group(true),
            };
            for item in it {
                acc = Box::new(acc.and(groups(item, tenant_id)?));
            }
            acc
        }
        Filter::Or(items) => {
            let mut it = items.as_slice().iter();
            let mut acc = match it.next() {
                Some(first) => groups(first, tenant_id)?,
                None => always_group(false),
            };
            for item in it {
                acc = Box::new(acc.or(groups(item, tenant_id)?));
            }
            acc
        }
        Filter::ValuePath(vp) => {
            return Err(invalid(format!(
                "value filters such as {}[...] are not supported yet",
                vp.attr
            )));
        }
    })
}

fn group_attr(exp: &AttrExp, tenant_id: &str) -> Result<Expr<groups::table>, DomainError> {
    let (path, cmp) = match exp {
        AttrExp::Present(path) => (path, None),
        AttrExp::Comparison(path, op, value) => (path, Some((op, value))),
    };
    let attr = attr_name(path, GROUP_URN)?;
    let members = || {
        group_members::table
            .filter(group_members::tenant_id.eq(tenant_id.to_owned()))
            .select(group_members::group_id)
    };
    let Some((op, value)) = cmp else {
        return Ok(match attr.as_str() {
            "id" | "displayname" | "meta.created" | "meta.lastmodified" => always_group(true),
            "externalid" => Box::new(groups::external_id.is_not_null()),
            "members" | "members.value" => Box::new(groups::id.eq_any(members())),
            _ => return Err(invalid(format!("cannot filter groups on {path}"))),
        });
    };
    Ok(match attr.as_str() {
        "id" => text_cmp!(groups::id, *op, string_value(&attr, value)?),
        "displayname" => text_cmp!(
            groups::display_name_lower,
            *op,
            string_value(&attr, value)?.to_lowercase()
        ),
        "externalid" => nullable_text_cmp!(groups::external_id, *op, string_value(&attr, value)?),
        "members" | "members.value" => {
            let v = string_value(&attr, value)?;
            let has = groups::id.eq_any(members().filter(group_members::user_id.eq(v)));
            match op {
                CompareOp::Eq => Box::new(has),
                CompareOp::Ne => Box::new(not(has)),
                other => return Err(invalid(format!("{other} does not apply to members"))),
            }
        }
        "meta.created" => time_cmp!(groups::created_at, op, value, &attr),
        "meta.lastmodified" => time_cmp!(groups::updated_at, op, value, &attr),
        _ => return Err(invalid(format!("cannot filter groups on {path}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_okta_and_entra_filters() {
        for f in [
            r#"userName eq "ada@example.com""#,
            r#"externalId eq "00u1abc""#,
            r#"displayName eq "Engineering""#,
            r#"USERNAME EQ "x" and active eq true"#,
            r#"emails.value co "@example.com""#,
        ] {
            assert!(matches!(parse(f), Ok(Some(_))), "{f}");
        }
        assert!(matches!(parse("  "), Ok(None)));
    }

    #[test]
    fn parse_rejects_bad_syntax_with_invalid_filter() {
        for f in [
            r#"userName eq"#,
            r#"userName zz "x""#,
            "(((",
            &"a".repeat(9000),
        ] {
            match parse(f) {
                Err(DomainError::Invalid { scim_type, .. }) => {
                    assert_eq!(scim_type, ScimType::InvalidFilter, "{f}")
                }
                other => panic!("{f}: {other:?}"),
            }
        }
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        assert_eq!(pattern(&CompareOp::Sw, "ab").as_deref(), Some("ab%"));
    }
}
