//! Strict input handling: a User or Group body is checked against the schema documents served
//! at `/Schemas` before it is translated, so that a bad value is a 400 and nothing is stored.
//!
//! Every declared attribute must have its declared type (a string, a boolean (Entra's
//! `"True"`/`"False"` strings accepted), a complex object, a list for a multi-valued one); every
//! string (and every key of an undeclared object) must keep the shared value rules of
//! `roster_proto::limits`, which the service enforces too: its length limit (`limits::max_chars`) and
//! no control characters but tab and line breaks in free text (none in names); an
//! `emails.value` must look like an address; at most one value of a multi-valued attribute may
//! be `primary`. Read-only attributes (`id`, `meta`, `groups`, `members.display`, ...) are
//! ignored on input (RFC 7643 §2.2), so they are not checked.
//!
//! Attributes no schema declares are kept as written (Okta and Entra send custom attributes),
//! unless the facade runs with `strict_schema`: then they are refused with 400 `invalidValue`.
//! RFC 7644 §3.12 defines `invalidValue` for a value "not compatible with the operation or
//! attribute type, or resource schema" and lists it for POST (create), PUT and PATCH, whereas
//! `invalidSyntax` is listed for search requests and PATCH request bodies only: an attribute the
//! resource schema does not have is a body incompatible with the resource schema.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::{
    ENTERPRISE_USER_URN, GROUP_URN, ROSTER_USER_URN, USER_URN, as_object, coerce_bool, get_ci,
    schema,
};
use crate::error::ScimError;

use roster_proto::limits::{self, MAX_STRING_CHARS};

/// The resource a body describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    User,
    Group,
}

impl From<Resource> for limits::Resource {
    fn from(r: Resource) -> Self {
        match r {
            Resource::User => limits::Resource::User,
            Resource::Group => limits::Resource::Group,
        }
    }
}

/// 400 `invalidValue` when `value` breaks the shared rules of `path` ([`limits::check`]): longer
/// than its limit, or holding a control character it may not hold.
pub(crate) fn check_length(resource: Resource, path: &str, value: &str) -> Result<(), ScimError> {
    match limits::check(resource.into(), path, value) {
        Some(why) => Err(ScimError::invalid_value(why)),
        None => Ok(()),
    }
}

/// A plausible e-mail address: one `@` between a non-empty local part and a non-empty domain,
/// no whitespace. (Deliverability is the identity provider's business.)
pub(crate) fn is_email_address(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !value.chars().any(char::is_whitespace)
}

/// The schema documents, by URN, built once.
static SCHEMAS: LazyLock<Vec<Value>> = LazyLock::new(schema::all);

fn attributes_of(urn: &str) -> &'static [Value] {
    SCHEMAS
        .iter()
        .find(|s| s["id"].as_str() == Some(urn))
        .and_then(|s| s["attributes"].as_array())
        .map_or(&[], Vec::as_slice)
}

fn find_attribute<'a>(attributes: &'a [Value], name: &str) -> Option<&'a Value> {
    attributes.iter().find(|a| {
        a["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The core schema and the extension schemas of a resource.
fn schemas_of(resource: Resource) -> (&'static str, &'static [&'static str]) {
    match resource {
        Resource::User => (USER_URN, &[ENTERPRISE_USER_URN, ROSTER_USER_URN]),
        Resource::Group => (GROUP_URN, &[]),
    }
}

/// Checks the attributes of a User or Group body (see the module documentation). `schemas`
/// itself is checked by the translators.
pub(crate) fn check_resource(
    doc: &Value,
    resource: Resource,
    strict: bool,
) -> Result<(), ScimError> {
    let what = match resource {
        Resource::User => "a User",
        Resource::Group => "a Group",
    };
    let map = as_object(doc, what)?;
    let listed: Vec<&str> = match get_ci(map, "schemas") {
        Some(Value::Array(urns)) => urns.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    check_attributes_of(map, resource, strict, &listed)
}

/// Checks the top-level attributes in `map` (a whole body, or the attributes a PATCH changed).
/// In strict mode an extension object must also be named in `listed` (the body's `schemas`),
/// unless `listed` is empty (a PATCH's changed attributes carry no `schemas`).
pub(crate) fn check_attributes_of(
    map: &Map<String, Value>,
    resource: Resource,
    strict: bool,
    listed: &[&str],
) -> Result<(), ScimError> {
    let (core, extensions) = schemas_of(resource);
    let core_attributes = attributes_of(core);
    let checker = Checker { resource, strict };
    for (key, value) in map {
        if value.is_null()
            || key.eq_ignore_ascii_case("schemas")
            || key.eq_ignore_ascii_case("meta")
        {
            continue;
        }
        if let Some(urn) = extensions.iter().find(|u| u.eq_ignore_ascii_case(key)) {
            if strict && !listed.is_empty() && !listed.iter().any(|l| l.eq_ignore_ascii_case(urn)) {
                return Err(ScimError::invalid_value(format!(
                    "the extension \"{urn}\" is not named in 'schemas'"
                )));
            }
            let Value::Object(ext) = value else {
                return Err(ScimError::invalid_value(format!(
                    "'{urn}' must be an object"
                )));
            };
            checker.attributes(ext, attributes_of(urn), "")?;
            continue;
        }
        match find_attribute(core_attributes, key) {
            Some(definition) => checker.attribute(definition, value, "")?,
            None => checker.unknown(key, value, "")?,
        }
    }
    Ok(())
}

struct Checker {
    resource: Resource,
    strict: bool,
}

impl Checker {
    fn attributes(
        &self,
        map: &Map<String, Value>,
        definitions: &[Value],
        prefix: &str,
    ) -> Result<(), ScimError> {
        for (key, value) in map {
            if value.is_null() {
                continue;
            }
            match find_attribute(definitions, key) {
                Some(definition) => self.attribute(definition, value, prefix)?,
                None => self.unknown(key, value, prefix)?,
            }
        }
        Ok(())
    }

    /// An attribute no schema declares: refused in strict mode, else only its strings (and
    /// keys) against the shared rules.
    fn unknown(&self, key: &str, value: &Value, prefix: &str) -> Result<(), ScimError> {
        let path = format!("{prefix}{}", key.escape_debug());
        check_text(key, &path)?;
        if self.strict {
            return Err(ScimError::invalid_value(format!(
                "'{path}' is not an attribute of the resource's schemas (strict schema mode)"
            )));
        }
        check_strings(value, &path)
    }

    fn attribute(&self, definition: &Value, value: &Value, prefix: &str) -> Result<(), ScimError> {
        let name = definition["name"].as_str().unwrap_or_default();
        let path = format!("{prefix}{name}");
        if definition["mutability"] == "readOnly" {
            // Ignored on input (RFC 7643 §2.2).
            return Ok(());
        }
        let complex = definition["type"] == "complex";
        if definition["multiValued"] == true {
            let items = match value {
                Value::Array(items) => items.as_slice(),
                // One object for a list of objects: accepted as a list of one, as before.
                Value::Object(_) if complex => std::slice::from_ref(value),
                _ => {
                    return Err(ScimError::invalid_value(format!("'{path}' must be a list")));
                }
            };
            let mut primaries = 0;
            for item in items.iter().filter(|i| !i.is_null()) {
                self.single(definition, item, &path)?;
                if let Value::Object(m) = item
                    && get_ci(m, "primary").and_then(coerce_bool) == Some(true)
                {
                    primaries += 1;
                }
            }
            if primaries > 1 {
                return Err(ScimError::invalid_value(format!(
                    "at most one of '{path}' may be primary"
                )));
            }
            return Ok(());
        }
        match value {
            // Entra sends the single-valued `manager` as a list of one object.
            Value::Array(items) if complex => items
                .iter()
                .filter(|i| !i.is_null())
                .try_for_each(|item| self.single(definition, item, &path)),
            _ => self.single(definition, value, &path),
        }
    }

    /// One value of an attribute, against its declared type.
    fn single(&self, definition: &Value, value: &Value, path: &str) -> Result<(), ScimError> {
        match definition["type"].as_str().unwrap_or_default() {
            "boolean" => match coerce_bool(value) {
                Some(_) => Ok(()),
                None => Err(ScimError::invalid_value(format!(
                    "'{path}' must be a boolean"
                ))),
            },
            "complex" => {
                let Value::Object(map) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "'{path}' must be an object"
                    )));
                };
                let subs = definition["subAttributes"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice);
                self.attributes(map, subs, &format!("{path}."))
            }
            // string, reference, binary (base64 text)
            _ => {
                let Value::String(s) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "'{path}' must be a string"
                    )));
                };
                check_length(self.resource, path, s)?;
                if self.resource == Resource::User && path == "emails.value" && !is_email_address(s)
                {
                    return Err(ScimError::invalid_value(format!(
                        "'emails.value' \"{s}\" is not an e-mail address"
                    )));
                }
                Ok(())
            }
        }
    }
}

/// Every string and key of an undeclared value, at any depth, against the shared rules of
/// any string.
fn check_strings(value: &Value, path: &str) -> Result<(), ScimError> {
    match value {
        Value::String(s) => check_text(s, path),
        Value::Array(items) => items.iter().try_for_each(|v| check_strings(v, path)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_text(k, path)?;
            check_strings(v, path)
        }),
        _ => Ok(()),
    }
}

fn check_text(text: &str, path: &str) -> Result<(), ScimError> {
    match limits::check_with(text, path, MAX_STRING_CHARS, false) {
        Some(why) => Err(ScimError::invalid_value(format!("a string in {why}"))),
        None => Ok(()),
    }
}

/// RFC 7644 §3.5.2: a PATCH that makes a value primary makes the others not primary. For each
/// multi-valued attribute of `after` with more than one primary value, the values that were
/// already primary in `before` lose it (if the PATCH itself set two, they stay, and the check
/// refuses them).
pub(crate) fn demote_replaced_primaries(
    before: &Map<String, Value>,
    after: &mut Map<String, Value>,
) {
    for (key, value) in after.iter_mut() {
        let Value::Array(items) = value else {
            continue;
        };
        let is_primary = |item: &Value| {
            item.as_object()
                .and_then(|m| get_ci(m, "primary"))
                .and_then(coerce_bool)
                == Some(true)
        };
        if items.iter().filter(|i| is_primary(i)).count() < 2 {
            continue;
        }
        let old: Vec<&Value> = match before.get(key) {
            Some(Value::Array(old)) => old.iter().filter(|i| is_primary(i)).collect(),
            _ => continue,
        };
        for item in items.iter_mut() {
            if is_primary(item)
                && old.contains(&&*item)
                && let Value::Object(m) = item
            {
                let key = super::key_ci(m, "primary").unwrap_or_else(|| "primary".into());
                m.insert(key, Value::Bool(false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use serde_json::json;

    fn user(extra: Value) -> Value {
        let mut doc = json!({"schemas": [USER_URN], "userName": "ada@example.com"});
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        doc
    }

    fn err(doc: &Value, resource: Resource, strict: bool) -> ScimError {
        check_resource(doc, resource, strict).expect_err(&doc.to_string())
    }

    #[test]
    fn okta_and_entra_bodies_pass() {
        let okta = user(json!({
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": true, "value": "ada@example.com", "type": "work"}],
            "displayName": "Ada", "locale": "en-US", "externalId": "00u1", "groups": [],
            "password": "pw", "active": true
        }));
        let entra = json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "userName": "ada@example.com", "active": "True",
            "emails": [{"primary": "True", "type": "work", "value": "ada@example.com"}],
            "roles": [], "name": {"formatted": "Ada L"},
            (ENTERPRISE_USER_URN): {"employeeNumber": "1", "manager": [{"value": "m", "$ref": "x"}]}
        });
        for strict in [false, true] {
            check_resource(&okta, Resource::User, strict).unwrap();
            check_resource(&entra, Resource::User, strict).unwrap();
        }
    }

    #[test]
    fn wrong_types_are_invalid_value() {
        for extra in [
            json!({"active": "yes"}),
            json!({"userName": 5}),
            json!({"emails": "a@b"}),
            json!({"emails": [{"value": 3}]}),
            json!({"emails": [{"value": "a@b", "primary": "maybe"}]}),
            json!({"name": "Ada"}),
            json!({"name": {"givenName": 1}}),
            json!({"phoneNumbers": "555"}),
            json!({"phoneNumbers": [{"value": 555}]}),
            json!({"addresses": [{"locality": ["x"]}]}),
            json!({(ENTERPRISE_USER_URN): "x"}),
            json!({(ENTERPRISE_USER_URN): {"department": 7}}),
        ] {
            for strict in [false, true] {
                let e = err(&user(extra.clone()), Resource::User, strict);
                assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{extra}");
            }
        }
        // Read-only attributes are ignored, whatever they hold.
        check_resource(
            &user(json!({"groups": "x", "id": 5, "meta": 1})),
            Resource::User,
            true,
        )
        .unwrap();
    }

    #[test]
    fn lengths_have_limits() {
        let long = |n: usize| "x".repeat(n);
        check_resource(&user(json!({"userName": long(256)})), Resource::User, false).unwrap();
        err(&user(json!({"userName": long(257)})), Resource::User, false);
        check_resource(&user(json!({"title": long(1024)})), Resource::User, false).unwrap();
        err(&user(json!({"title": long(1025)})), Resource::User, false);
        err(
            &user(json!({"custom": {"deep": [long(1025)]}})),
            Resource::User,
            false,
        );
        let email = format!("{}@example.com", long(243));
        err(
            &user(json!({"emails": [{"value": email}]})),
            Resource::User,
            false,
        );
        // Characters, not bytes.
        check_resource(
            &user(json!({"userName": "é".repeat(256)})),
            Resource::User,
            false,
        )
        .unwrap();
        let group = json!({"schemas": [GROUP_URN], "displayName": long(257)});
        err(&group, Resource::Group, false);
    }

    #[test]
    fn control_characters_are_refused_by_the_shared_rule() {
        for extra in [
            json!({"userName": "a\u{0}b"}),
            json!({"userName": "ada\n"}),
            json!({"externalId": "x\ty"}),
            json!({"title": "a\u{1}"}),
            json!({"emails": [{"value": "a@b", "display": "x\u{0}"}]}),
            json!({"phoneNumbers": [{"value": "555\u{0}"}]}),
            json!({"custom": {"deep": ["\u{1f}"]}}),
            json!({"custom": {"ke\u{0}y": "v"}}),
            json!({"cus\u{0}tom": 1}),
            json!({(ENTERPRISE_USER_URN): {"department": "R\u{0}D"}}),
        ] {
            let e = err(&user(extra.clone()), Resource::User, false);
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{extra}");
        }
        // Free text keeps its line breaks and tabs.
        check_resource(
            &user(
                json!({"addresses": [{"formatted": "1 Main St\r\nSpringfield\t"}],
                         "custom": {"note": "a\nb"}}),
            ),
            Resource::User,
            false,
        )
        .unwrap();
        let group = json!({"schemas": [GROUP_URN], "displayName": "a\u{0}"});
        err(&group, Resource::Group, false);
    }

    #[test]
    fn email_addresses_are_checked() {
        for good in ["a@b", "first.last+tag@example.co.uk"] {
            assert!(is_email_address(good), "{good}");
        }
        for bad in ["", "ab", "@b", "a@", "a@b@c", "a b@c", "a@b c", "a@b\n"] {
            assert!(!is_email_address(bad), "{bad}");
            err(
                &user(json!({"emails": [{"value": bad}]})),
                Resource::User,
                false,
            );
        }
    }

    #[test]
    fn two_primaries_are_refused() {
        for extra in [
            json!({"emails": [{"value": "a@b", "primary": true}, {"value": "c@d", "primary": "True"}]}),
            json!({"phoneNumbers": [{"value": "1", "primary": true}, {"value": "2", "primary": true}]}),
        ] {
            err(&user(extra), Resource::User, false);
        }
        check_resource(
            &user(json!({"emails": [{"value": "a@b", "primary": true}, {"value": "c@d", "primary": false}]})),
            Resource::User,
            false,
        )
        .unwrap();
    }

    #[test]
    fn strict_mode_refuses_undeclared_attributes() {
        for extra in [
            json!({"customThing": 1}),
            json!({"name": {"nickname": "x"}}),
            json!({"emails": [{"value": "a@b", "kind": "x"}]}),
            json!({(ENTERPRISE_USER_URN): {"badge": "1"}}),
            json!({"urn:example:custom:2.0:User": {"x": 1}}),
        ] {
            let doc = user(extra.clone());
            check_resource(&doc, Resource::User, false).unwrap();
            assert_eq!(
                err(&doc, Resource::User, true).scim_type,
                Some(ScimType::InvalidValue),
                "{extra}"
            );
        }
        // An extension object whose URN `schemas` does not name.
        let doc = user(json!({(ENTERPRISE_USER_URN): {"department": "R&D"}}));
        check_resource(&doc, Resource::User, false).unwrap();
        err(&doc, Resource::User, true);
        let group = json!({"schemas": [GROUP_URN], "displayName": "g", "description": "x"});
        check_resource(&group, Resource::Group, false).unwrap();
        err(&group, Resource::Group, true);
        let group = json!({"schemas": [GROUP_URN], "displayName": "g", "members": [{"value": "u", "display": 3}]});
        check_resource(&group, Resource::Group, true).unwrap();
    }

    #[test]
    fn a_patched_primary_replaces_the_old_one() {
        let before = json!({"emails": [{"value": "a@b", "primary": true}]});
        let mut after = json!({"emails": [{"value": "a@b", "primary": true}, {"value": "c@d", "primary": true}]});
        demote_replaced_primaries(before.as_object().unwrap(), after.as_object_mut().unwrap());
        assert_eq!(
            after,
            json!({"emails": [{"value": "a@b", "primary": false}, {"value": "c@d", "primary": true}]})
        );
        // Two new primaries stay two.
        let mut after = json!({"emails": [{"value": "x@y", "primary": true}, {"value": "c@d", "primary": true}]});
        demote_replaced_primaries(before.as_object().unwrap(), after.as_object_mut().unwrap());
        assert_eq!(after["emails"][0]["primary"], true);
    }
}
