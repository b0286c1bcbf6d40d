//! Bounded work per request: the limits every SCIM body is held to, each checked before the work
//! it bounds and before any gRPC call. (Public so that tests and operators can read them.)
//!
//! | limit | what it bounds | refused with |
//! |---|---|---|
//! | `FacadeConfig::body_limit` | bytes of any body | 413 |
//! | [`MAX_JSON_DEPTH`] | nesting of any JSON body (checked on the bytes, before parsing) | 400 `invalidSyntax` |
//! | [`MAX_PATCH_OPERATIONS`] | operations of one PATCH | 400 `tooMany` |
//! | [`MAX_PATCH_OPERATION_VALUES`] | JSON values in one operation's `value` | 400 `tooMany` |
//! | [`MAX_PATCH_VALUES`] | JSON values in all operations of one PATCH | 400 `tooMany` |
//! | [`MAX_GROUP_PATCH_VALUES`] | the same two for a Group PATCH (members are linear work) | 400 `tooMany` |
//! | [`MAX_PATCH_PATH_CHARS`] | characters of one operation's `path` | 400 `invalidPath` |
//! | [`MAX_MULTI_VALUES`] | values of a multi-valued User attribute after a write | 400 `invalidValue` |
//! | [`MAX_ATTRIBUTES`] | members of any object of a User document after a write | 400 `invalidValue` |
//! | `FacadeConfig::bulk_max_operations` | operations of one `POST /Bulk` | 413 |
//! | [`MAX_BULK_VALUES`] | JSON values in all operations of one `POST /Bulk` | 413 |
//!
//! **Why `tooMany` for the size of a PATCH.** RFC 7644 §3.12 offers two candidates for PATCH.
//! `invalidValue` says a value "was missing, or ... not compatible with the operation or
//! attribute type ... or resource schema": nothing is wrong with any one value of an oversized
//! PATCH, so a client reading `invalidValue` would look for a bad value that is not there.
//! `tooMany` says the request asks for more than "the server is willing to calculate or
//! process", and Table 9 lists it for PATCH: that is exactly the situation, and it tells the
//! client that splitting the request is the fix. A multi-valued attribute that would end up with
//! more than [`MAX_MULTI_VALUES`] values is different: the resulting resource breaks a rule of
//! the resource (however the values arrive: POST, PUT or PATCH), so it is `invalidValue`, like
//! the other value limits of `validate.rs`. Nesting deeper than [`MAX_JSON_DEPTH`] is a body
//! whose structure does not fit any SCIM message: `invalidSyntax`. The Bulk limits follow RFC
//! 7644 §3.7.4, which answers 413 when a bulk request exceeds what the service provider accepts.
//!
//! With these bounds a PATCH's work in the facade is linear in its values (see `scim::patch`)
//! and small; the steps that can still take more than about a millisecond for a maximal body
//! (parsing a large body, applying a large PATCH) run on the blocking pool, bounded by
//! `cpu::CpuPool`, never on the async workers.

use serde_json::Value;

use crate::error::{ScimError, ScimType};

/// The deepest nesting of arrays and objects accepted in a JSON body (a top-level object is 1).
/// The deepest SCIM message Roster reads, a Bulk operation carrying a PATCH of complex values,
/// is 8 deep; custom attributes get room to spare.
pub const MAX_JSON_DEPTH: usize = 32;

/// The most operations one PATCH request may carry. Okta and Entra send a handful.
pub const MAX_PATCH_OPERATIONS: usize = 1_000;

/// The most JSON values one User PATCH operation's `value` may carry, counting every array
/// element and object member at any depth (`["a","b"]` is 2, `[{"value":"id"}]` is 2). Group
/// PATCHes have [`MAX_GROUP_PATCH_VALUES`].
pub const MAX_PATCH_OPERATION_VALUES: usize = 10_000;

/// The most JSON values all operations of one PATCH request may carry together (counted as for
/// [`MAX_PATCH_OPERATION_VALUES`]).
pub const MAX_PATCH_VALUES: usize = 20_000;

/// The most JSON values a Group PATCH may carry, in one operation or in all (a member
/// `{"value": id}` counts 2): room for the 100 000 members the service takes in one request,
/// so that a full member list (Okta's "replace members") of a large group fits.
pub const MAX_GROUP_PATCH_VALUES: usize = 2 * roster_proto::limits::MAX_MEMBERS_PER_REQUEST;

/// The longest `path` of a PATCH operation, in characters: a value filter in a path is
/// evaluated against every value of its attribute, so its size is bounded.
pub const MAX_PATCH_PATH_CHARS: usize = 1_024;

/// The most values a multi-valued attribute of a User may hold after a write (any list in the
/// document: `emails`, `phoneNumbers`, a custom attribute). The service stores at most 32
/// e-mail addresses and 64 KiB of other attributes anyway; this bound refuses a larger list
/// before the facade spends work on it.
pub const MAX_MULTI_VALUES: usize = 1_000;

/// The most members an object of a User document may have after a write: attributes of the
/// resource or of an extension, sub-attributes of a complex value. Real resources have a few
/// dozen; the bound keeps every case-insensitive lookup in an object short.
pub const MAX_ATTRIBUTES: usize = 256;

/// The most JSON values all operations of one `POST /Bulk` may carry together (each operation
/// object counted whole, its `data` included, as for [`MAX_PATCH_OPERATION_VALUES`]).
pub const MAX_BULK_VALUES: usize = 100_000;

/// Bodies up to this size are parsed on the async worker; larger ones on the blocking pool.
pub(crate) const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// PATCH requests with up to this many values are applied on the async worker; larger ones on
/// the blocking pool.
pub(crate) const INLINE_PATCH_VALUES: usize = 1_000;

/// 400 `invalidSyntax` when `bytes` nest arrays and objects deeper than [`MAX_JSON_DEPTH`].
/// A linear scan of the bytes, done before parsing so that a deep body costs no allocation;
/// brackets inside strings do not count. (Malformed JSON passes here and fails to parse.)
pub(crate) fn check_json_depth(bytes: &[u8]) -> Result<(), ScimError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ScimError::invalid_syntax(format!(
                        "the request body nests arrays and objects deeper than {MAX_JSON_DEPTH} \
                         levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The number of JSON values inside `value`: every array element and object member, at any
/// depth; a scalar (or an empty list or object) counts 1. Stops counting past `cap`, so that
/// the count itself is bounded work.
pub(crate) fn count_values(value: &Value, cap: usize) -> usize {
    fn walk<'a>(children: impl Iterator<Item = &'a Value>, count: &mut usize, cap: usize) {
        for child in children {
            if *count > cap {
                return;
            }
            *count += 1;
            match child {
                Value::Array(items) => walk(items.iter(), count, cap),
                Value::Object(map) => walk(map.values(), count, cap),
                _ => {}
            }
        }
    }
    let mut count = 0;
    match value {
        Value::Array(items) => walk(items.iter(), &mut count, cap),
        Value::Object(map) => walk(map.values(), &mut count, cap),
        _ => {}
    }
    count.max(1)
}

/// 400 `tooMany`.
pub(crate) fn too_many(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request(ScimType::TooMany, detail)
}

/// 400 `invalidValue` when a list anywhere in `value` (the value of attribute `name`) holds
/// more than [`MAX_MULTI_VALUES`] values, or an object more than [`MAX_ATTRIBUTES`] members.
pub(crate) fn check_multi_valued(name: &str, value: &Value) -> Result<(), ScimError> {
    match value {
        Value::Object(map) if map.len() > MAX_ATTRIBUTES => Err(ScimError::invalid_value(format!(
            "'{name}' has {} attributes, more than the {MAX_ATTRIBUTES} an object may have",
            map.len()
        ))),
        Value::Array(items) if items.len() > MAX_MULTI_VALUES => {
            Err(ScimError::invalid_value(format!(
                "'{name}' would hold {} values, more than the {MAX_MULTI_VALUES} a multi-valued \
                 attribute may hold",
                items.len()
            )))
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_multi_valued(name, v)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            if v.is_array() || v.is_object() {
                check_multi_valued(&format!("{name}.{k}"), v)
            } else {
                Ok(())
            }
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert!(check_json_depth(nested(MAX_JSON_DEPTH).as_bytes()).is_ok());
        let err = check_json_depth(nested(MAX_JSON_DEPTH + 1).as_bytes()).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
        // Brackets in strings, and escaped quotes, are not structure.
        let deep_string = format!(r#"{{"a": "{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(check_json_depth(deep_string.as_bytes()).is_ok());
        // Siblings do not add up.
        let wide = format!("[{}]", vec![nested(MAX_JSON_DEPTH - 1); 50].join(","));
        assert!(check_json_depth(wide.as_bytes()).is_ok());
    }

    #[test]
    fn values_are_counted_at_every_depth() {
        assert_eq!(count_values(&json!("x"), 100), 1);
        assert_eq!(count_values(&json!([]), 100), 1);
        assert_eq!(count_values(&json!(["a", "b"]), 100), 2);
        assert_eq!(count_values(&json!([{"value": "id"}]), 100), 2);
        assert_eq!(count_values(&json!({"a": [1, 2, {"b": 3}]}), 100), 5);
        // Bounded work: stops just past the cap.
        let big = Value::Array(vec![json!(1); 10_000]);
        assert_eq!(count_values(&big, 10), 11);
    }

    #[test]
    fn multi_valued_attributes_are_bounded_at_any_depth() {
        let at = Value::Array(vec![json!("v"); MAX_MULTI_VALUES]);
        assert!(check_multi_valued("x", &at).is_ok());
        let over = Value::Array(vec![json!("v"); MAX_MULTI_VALUES + 1]);
        let err = check_multi_valued("x", &over).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        let err = check_multi_valued("urn:x", &json!({ "tags": over })).unwrap_err();
        assert!(err.detail.contains("'urn:x.tags'"), "{}", err.detail);
    }
}
