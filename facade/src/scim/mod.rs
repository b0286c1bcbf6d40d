//! SCIM JSON: resources ↔ proto messages, PATCH, list responses, attribute projection, and the
//! discovery documents.
//!
//! Documents are handled as `serde_json::Value` rather than derived structs: SCIM attribute
//! names match without regard to letter case, `null` means absent, Entra sends booleans as
//! strings, and every attribute the proto has no field for must come back exactly as written.

pub(crate) mod discovery;
pub(crate) mod group;
pub(crate) mod list;
pub(crate) mod patch;
pub(crate) mod project;
pub(crate) mod schema;
pub(crate) mod user;
pub(crate) mod user_patch;
pub(crate) mod validate;

use serde_json::{Map, Value, json};

use crate::error::ScimError;
use crate::response::weak_etag;

pub(crate) const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const ENTERPRISE_USER_URN: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const ROSTER_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";
/// Entra adds this to the `schemas` of the groups it creates.
pub(crate) const ENTRA_GROUP_URN: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
pub(crate) const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(crate) const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub(crate) const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub(crate) const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub(crate) const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub(crate) const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The entry of `map` whose key equals `name` ignoring ASCII case (the last one if several do).
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The key of `map` that equals `name` ignoring ASCII case.
pub(crate) fn key_ci(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys()
        .rev()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
}

/// A SCIM boolean: `true`/`false`, or Entra's `"True"`/`"False"` strings.
pub(crate) fn coerce_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// `value` as a string attribute: `null` is absent, anything but a string is 400 invalidValue.
pub(crate) fn opt_string(attribute: &str, value: &Value) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ScimError::invalid_value(format!(
            "'{attribute}' must be a string"
        ))),
    }
}

/// `value` as a boolean attribute (Entra strings accepted).
pub(crate) fn bool_value(attribute: &str, value: &Value) -> Result<bool, ScimError> {
    coerce_bool(value)
        .ok_or_else(|| ScimError::invalid_value(format!("'{attribute}' must be a boolean")))
}

/// Checks `schemas`: present, a list of strings, containing `core`, and nothing outside
/// `allowed` (compared without letter case).
pub(crate) fn check_schemas(
    doc: &Map<String, Value>,
    core: &str,
    allowed: &[&str],
) -> Result<(), ScimError> {
    let Some(Value::Array(schemas)) = get_ci(doc, "schemas") else {
        return Err(ScimError::invalid_value(format!(
            "'schemas' must be a list containing \"{core}\""
        )));
    };
    let mut has_core = false;
    for schema in schemas {
        let Value::String(urn) = schema else {
            return Err(ScimError::invalid_value(
                "'schemas' must be a list of strings",
            ));
        };
        has_core |= urn.eq_ignore_ascii_case(core);
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(urn)) {
            return Err(ScimError::invalid_value(format!(
                "unsupported schema \"{urn}\""
            )));
        }
    }
    if has_core {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "'schemas' must contain \"{core}\""
        )))
    }
}

/// RFC 3339 text of a protobuf timestamp.
pub(crate) fn rfc3339(ts: &prost_types::Timestamp) -> Option<String> {
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The `meta` attribute of a resource.
pub(crate) fn meta(
    resource_type: &str,
    created: Option<&prost_types::Timestamp>,
    updated: Option<&prost_types::Timestamp>,
    location: &str,
    etag: &str,
) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceType".into(), resource_type.into());
    if let Some(created) = created.and_then(rfc3339) {
        meta.insert("created".into(), created.into());
    }
    if let Some(updated) = updated.and_then(rfc3339) {
        meta.insert("lastModified".into(), updated.into());
    }
    meta.insert("location".into(), location.into());
    if !etag.is_empty() {
        meta.insert("version".into(), weak_etag(etag).into());
    }
    Value::Object(meta)
}

/// A JSON object from a document, or 400 invalidSyntax.
pub(crate) fn as_object<'a>(
    doc: &'a Value,
    what: &str,
) -> Result<&'a Map<String, Value>, ScimError> {
    doc.as_object()
        .ok_or_else(|| ScimError::invalid_syntax(format!("{what} must be a JSON object")))
}

/// A list of strings for `schemas`.
pub(crate) fn schemas(urns: &[&str]) -> Value {
    json!(urns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_coerce_from_entra_strings() {
        assert_eq!(coerce_bool(&json!("True")), Some(true));
        assert_eq!(coerce_bool(&json!("FALSE")), Some(false));
        assert_eq!(coerce_bool(&json!(false)), Some(false));
        assert_eq!(coerce_bool(&json!("yes")), None);
        assert_eq!(coerce_bool(&json!(1)), None);
    }

    #[test]
    fn timestamps_render_as_rfc3339() {
        let ts = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(rfc3339(&ts).as_deref(), Some("2023-11-14T22:13:20Z"));
    }

    #[test]
    fn schemas_are_checked() {
        let allowed = [USER_URN, ENTERPRISE_USER_URN];
        let ok = json!({"schemas": [USER_URN, ENTERPRISE_USER_URN]});
        assert!(check_schemas(ok.as_object().unwrap(), USER_URN, &allowed).is_ok());
        for bad in [
            json!({}),
            json!({"schemas": USER_URN}),
            json!({"schemas": [ENTERPRISE_USER_URN]}),
            json!({"schemas": [USER_URN, "urn:example:other"]}),
        ] {
            assert!(
                check_schemas(bad.as_object().unwrap(), USER_URN, &allowed).is_err(),
                "{bad}"
            );
        }
    }
}
