//! SCIM User (RFC 7643 §4.1) ↔ `roster.v1.User`.
//!
//! Attributes with a proto field map to it; the Roster extension maps to `role`/`effective_role`;
//! every other top-level attribute (phoneNumbers, addresses, the enterprise extension, ...) is
//! kept verbatim in `attributes_json` and merged back into the top level on output.

use roster_proto::v1::{Email, PersonName, User};
use serde_json::{Map, Value, json};

use super::{
    ENTERPRISE_USER_URN, ROSTER_USER_URN, USER_URN, as_object, bool_value, check_schemas,
    coerce_bool, get_ci, meta, opt_string,
};
use crate::error::ScimError;

/// Top-level attributes the facade maps to proto fields (or ignores: read-only ones).
pub(crate) const MAPPED: &[&str] = &[
    "schemas",
    "id",
    "meta",
    "groups",
    "externalId",
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "emails",
    "password",
    ROSTER_USER_URN,
];

/// Standard attributes kept in `attributes_json`; listed only to render them in canonical case.
pub(crate) const PASSTHROUGH: &[&str] = &[
    "phoneNumbers",
    "addresses",
    "ims",
    "photos",
    "entitlements",
    "x509Certificates",
    "roles",
    ENTERPRISE_USER_URN,
];

/// The schemas a User body may name.
pub(crate) const USER_SCHEMAS: &[&str] = &[USER_URN, ENTERPRISE_USER_URN, ROSTER_USER_URN];

/// The sub-attributes of `name`: SCIM name and field-mask path.
pub(crate) const NAME_PARTS: [(&str, &str); 6] = [
    ("formatted", "formatted"),
    ("familyName", "family_name"),
    ("givenName", "given_name"),
    ("middleName", "middle_name"),
    ("honorificPrefix", "honorific_prefix"),
    ("honorificSuffix", "honorific_suffix"),
];

/// Every writable field of `User`, as field-mask paths.
const WRITABLE_FIELDS: &[&str] = &[
    "user_name",
    "external_id",
    "name",
    "display_name",
    "nick_name",
    "profile_url",
    "title",
    "user_type",
    "preferred_language",
    "locale",
    "timezone",
    "active",
    "emails",
    "role",
    "attributes_json",
    "password",
];

/// The canonical spelling of a known top-level attribute name.
pub(crate) fn canonical_attribute(name: &str) -> Option<&'static str> {
    MAPPED
        .iter()
        .chain(PASSTHROUGH)
        .find(|known| known.eq_ignore_ascii_case(name))
        .copied()
}

/// The field-mask path of a `name` sub-attribute.
pub(crate) fn name_part(sub: &str) -> Option<(&'static str, &'static str)> {
    NAME_PARTS
        .into_iter()
        .find(|(scim, _)| scim.eq_ignore_ascii_case(sub))
}

/// Sets one `name` sub-attribute by its field-mask path.
pub(crate) fn set_name_part(name: &mut PersonName, mask: &str, value: Option<String>) {
    let slot = match mask {
        "formatted" => &mut name.formatted,
        "family_name" => &mut name.family_name,
        "given_name" => &mut name.given_name,
        "middle_name" => &mut name.middle_name,
        "honorific_prefix" => &mut name.honorific_prefix,
        _ => &mut name.honorific_suffix,
    };
    *slot = value;
}

fn name_part_value<'a>(name: &'a PersonName, mask: &str) -> Option<&'a String> {
    match mask {
        "formatted" => name.formatted.as_ref(),
        "family_name" => name.family_name.as_ref(),
        "given_name" => name.given_name.as_ref(),
        "middle_name" => name.middle_name.as_ref(),
        "honorific_prefix" => name.honorific_prefix.as_ref(),
        _ => name.honorific_suffix.as_ref(),
    }
}

/// A User body translated to proto, and what proto3 cannot tell by itself.
#[derive(Debug)]
pub(crate) struct ScimUser {
    pub(crate) user: User,
    /// Whether `active` was in the body (proto's `bool active` has no presence).
    pub(crate) active_given: bool,
    /// Whether the Roster extension object was in the body.
    pub(crate) role_given: bool,
}

impl ScimUser {
    /// The field mask of a full replace (PUT, general PATCH): `*`, except that what the body
    /// leaves out entirely keeps its stored value: `active` (proto3 cannot say "absent"), the
    /// `password` (never read back), and the role when the Roster extension is absent (IdPs that
    /// do not know it must not reset roles assigned in Roster).
    pub(crate) fn replace_mask(&self) -> Vec<String> {
        let password_given = self.user.password.is_some();
        if self.active_given && password_given && self.role_given {
            return vec!["*".to_owned()];
        }
        WRITABLE_FIELDS
            .iter()
            .filter(|f| match **f {
                "active" => self.active_given,
                "password" => password_given,
                "role" => self.role_given,
                _ => true,
            })
            .map(|f| (*f).to_owned())
            .collect()
    }
}

/// A SCIM User body → proto. `id`, `meta` and `groups` are ignored; `null` is absent.
pub(crate) fn user_from_scim(doc: &Value) -> Result<ScimUser, ScimError> {
    let map = as_object(doc, "a User")?;
    check_schemas(map, USER_URN, USER_SCHEMAS)?;
    let mut user = User::default();
    let mut active_given = false;
    let mut role_given = false;
    let mut user_name = None;
    let mut extra = Map::new();
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        let Some(attribute) = canonical_attribute(key) else {
            extra.insert(key.clone(), value.clone());
            continue;
        };
        match attribute {
            "schemas" | "id" | "meta" | "groups" => {}
            "userName" => user_name = opt_string(attribute, value)?,
            "externalId" => user.external_id = opt_string(attribute, value)?,
            "name" => user.name = Some(name_from_scim(value)?),
            "displayName" => user.display_name = opt_string(attribute, value)?,
            "nickName" => user.nick_name = opt_string(attribute, value)?,
            "profileUrl" => user.profile_url = opt_string(attribute, value)?,
            "title" => user.title = opt_string(attribute, value)?,
            "userType" => user.user_type = opt_string(attribute, value)?,
            "preferredLanguage" => user.preferred_language = opt_string(attribute, value)?,
            "locale" => user.locale = opt_string(attribute, value)?,
            "timezone" => user.timezone = opt_string(attribute, value)?,
            "active" => {
                user.active = bool_value(attribute, value)?;
                active_given = true;
            }
            "emails" => user.emails = emails_from_scim(value)?,
            "password" => user.password = opt_string(attribute, value)?,
            ROSTER_USER_URN => {
                user.role = role_from_scim(value)?;
                role_given = true;
            }
            ENTERPRISE_USER_URN => {
                extra.insert(attribute.to_owned(), value.clone());
            }
            multi_valued => {
                extra.insert(multi_valued.to_owned(), with_boolean_primary(value));
            }
        }
    }
    user.user_name = user_name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("'userName' is required"))?;
    user.attributes_json = Value::Object(extra).to_string();
    Ok(ScimUser {
        user,
        active_given,
        role_given,
    })
}

/// A standard multi-valued attribute with Entra's `"primary": "True"` made a boolean (RFC 7643
/// defines `primary` as boolean in every one of them); everything else stays as written.
fn with_boolean_primary(value: &Value) -> Value {
    let mut value = value.clone();
    if let Value::Array(items) = &mut value {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            for (key, v) in item.iter_mut() {
                if key.eq_ignore_ascii_case("primary")
                    && v.is_string()
                    && let Some(b) = coerce_bool(v)
                {
                    *v = Value::Bool(b);
                }
            }
        }
    }
    value
}

fn name_from_scim(value: &Value) -> Result<PersonName, ScimError> {
    let map = value
        .as_object()
        .ok_or_else(|| ScimError::invalid_value("'name' must be an object"))?;
    let mut name = PersonName::default();
    for (key, v) in map {
        match name_part(key) {
            Some((scim, mask)) => set_name_part(&mut name, mask, opt_string(scim, v)?),
            None => tracing::debug!(sub_attribute = %key, "ignoring an unknown name sub-attribute"),
        }
    }
    Ok(name)
}

fn emails_from_scim(value: &Value) -> Result<Vec<Email>, ScimError> {
    match value {
        Value::Array(items) => items.iter().map(email_from_scim).collect(),
        Value::Object(_) => Ok(vec![email_from_scim(value)?]),
        _ => Err(ScimError::invalid_value(
            "'emails' must be a list of objects",
        )),
    }
}

fn email_from_scim(value: &Value) -> Result<Email, ScimError> {
    let map = value
        .as_object()
        .ok_or_else(|| ScimError::invalid_value("each of 'emails' must be an object"))?;
    let field = |name: &str| match get_ci(map, name) {
        Some(v) => opt_string(&format!("emails.{name}"), v),
        None => Ok(None),
    };
    let primary = match get_ci(map, "primary") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            coerce_bool(v)
                .ok_or_else(|| ScimError::invalid_value("'emails.primary' must be a boolean"))?,
        ),
    };
    Ok(Email {
        value: field("value")?
            .ok_or_else(|| ScimError::invalid_value("'emails.value' is required"))?,
        r#type: field("type")?,
        primary,
        display: field("display")?,
    })
}

fn role_from_scim(value: &Value) -> Result<Option<String>, ScimError> {
    let map = value.as_object().ok_or_else(|| {
        ScimError::invalid_value(format!("'{ROSTER_USER_URN}' must be an object"))
    })?;
    // `effectiveRole` and `roleSource` are output only.
    get_ci(map, "role").map_or(Ok(None), |v| opt_string("role", v))
}

/// The Roster extension's `roleSource`: where `effectiveRole` comes from.
fn role_source(source: roster_proto::v1::RoleSource) -> Option<&'static str> {
    use roster_proto::v1::RoleSource;
    match source {
        RoleSource::Attribute => Some("attribute"),
        RoleSource::Group => Some("group"),
        RoleSource::Default => Some("default"),
        RoleSource::Unspecified => None,
    }
}

/// A proto User → its SCIM representation (`password` never appears).
pub(crate) fn user_to_scim(user: &User, base: &str) -> Value {
    let location = format!("{base}/Users/{}", user.id);
    let extra = stored_attributes(user);
    let has_enterprise = extra
        .keys()
        .any(|k| k.eq_ignore_ascii_case(ENTERPRISE_USER_URN));
    let has_roster = user.role.is_some() || !user.effective_role.is_empty();

    let mut urns = vec![USER_URN];
    if has_enterprise {
        urns.push(ENTERPRISE_USER_URN);
    }
    if has_roster {
        urns.push(ROSTER_USER_URN);
    }
    let mut doc = Map::new();
    doc.insert("schemas".into(), super::schemas(&urns));
    doc.insert("id".into(), user.id.clone().into());
    insert_opt(&mut doc, "externalId", user.external_id.as_ref());
    doc.insert("userName".into(), user.user_name.clone().into());
    if let Some(name) = &user.name {
        let mut out = Map::new();
        for (scim, mask) in NAME_PARTS {
            insert_opt(&mut out, scim, name_part_value(name, mask));
        }
        if !out.is_empty() {
            doc.insert("name".into(), Value::Object(out));
        }
    }
    insert_opt(&mut doc, "displayName", user.display_name.as_ref());
    insert_opt(&mut doc, "nickName", user.nick_name.as_ref());
    insert_opt(&mut doc, "profileUrl", user.profile_url.as_ref());
    insert_opt(&mut doc, "title", user.title.as_ref());
    insert_opt(&mut doc, "userType", user.user_type.as_ref());
    insert_opt(
        &mut doc,
        "preferredLanguage",
        user.preferred_language.as_ref(),
    );
    insert_opt(&mut doc, "locale", user.locale.as_ref());
    insert_opt(&mut doc, "timezone", user.timezone.as_ref());
    if !user.active_unassigned {
        doc.insert("active".into(), user.active.into());
    }
    if !user.emails.is_empty() {
        let emails = user.emails.iter().map(email_to_scim).collect();
        doc.insert("emails".into(), Value::Array(emails));
    }
    if !user.groups.is_empty() {
        let groups = user
            .groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.id,
                    "display": g.display_name,
                    "$ref": format!("{base}/Groups/{}", g.id),
                    "type": "direct",
                })
            })
            .collect();
        doc.insert("groups".into(), Value::Array(groups));
    }
    for (key, value) in extra {
        match canonical_attribute(&key) {
            // A stored attribute never shadows a mapped one.
            Some(known) if MAPPED.contains(&known) => {}
            Some(known) => {
                doc.insert(known.to_owned(), value);
            }
            None => {
                doc.insert(key, value);
            }
        }
    }
    if has_roster {
        let mut ext = Map::new();
        insert_opt(&mut ext, "role", user.role.as_ref());
        if !user.effective_role.is_empty() {
            ext.insert("effectiveRole".into(), user.effective_role.clone().into());
        }
        if let Some(source) = role_source(user.role_source()) {
            ext.insert("roleSource".into(), source.into());
        }
        doc.insert(ROSTER_USER_URN.into(), Value::Object(ext));
    }
    doc.insert(
        "meta".into(),
        meta(
            "User",
            user.create_time.as_ref(),
            user.update_time.as_ref(),
            &location,
            &user.etag,
        ),
    );
    Value::Object(doc)
}

/// `attributes_json` as an object (empty when unset or, with a warning, unreadable).
fn stored_attributes(user: &User) -> Map<String, Value> {
    if user.attributes_json.trim().is_empty() {
        return Map::new();
    }
    match serde_json::from_str(&user.attributes_json) {
        Ok(Value::Object(map)) => map,
        _ => {
            tracing::warn!(user_id = %user.id, "attributes_json is not a JSON object; not rendered");
            Map::new()
        }
    }
}

fn email_to_scim(email: &Email) -> Value {
    let mut out = Map::new();
    out.insert("value".into(), email.value.clone().into());
    insert_opt(&mut out, "type", email.r#type.as_ref());
    if let Some(primary) = email.primary {
        out.insert("primary".into(), primary.into());
    }
    insert_opt(&mut out, "display", email.display.as_ref());
    Value::Object(out)
}

fn insert_opt(map: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.clone().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use roster_proto::v1::GroupRef;

    const BASE: &str = "https://roster.example.com/scim/v2";

    /// What the service would return for a created `user`.
    fn stored(mut user: User) -> User {
        user.id = "u-1".into();
        user.etag = "e1".into();
        user.password = None;
        user.effective_role = user.role.clone().unwrap_or_else(|| "member".into());
        user.create_time = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        });
        user.update_time = user.create_time;
        user
    }

    fn okta_create() -> Value {
        json!({
            "schemas": [USER_URN],
            "userName": "ada@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [
                {"primary": true, "value": "ada@example.com", "type": "work"},
                {"value": "ada@home.example", "type": "home"}
            ],
            "displayName": "Ada Lovelace",
            "locale": "en-US",
            "externalId": "00u1abcd",
            "groups": [],
            "password": "s3cret!",
            "active": true
        })
    }

    #[test]
    fn okta_create_maps_to_proto() {
        let parsed = user_from_scim(&okta_create()).unwrap();
        let u = &parsed.user;
        assert!(parsed.active_given);
        assert_eq!(u.user_name, "ada@example.com");
        assert_eq!(u.external_id.as_deref(), Some("00u1abcd"));
        assert_eq!(u.name.as_ref().unwrap().given_name.as_deref(), Some("Ada"));
        assert_eq!(u.password.as_deref(), Some("s3cret!"));
        assert_eq!(u.emails.len(), 2);
        assert_eq!(u.emails[0].primary, Some(true));
        assert_eq!(u.emails[1].value, "ada@home.example");
        assert_eq!(u.emails[1].primary, None);
        assert_eq!(u.attributes_json, "{}");
        let mask = parsed.replace_mask();
        assert!(
            !mask.contains(&"role".to_owned()),
            "no Roster extension: the role is kept"
        );
        assert!(mask.contains(&"active".to_owned()) && mask.contains(&"password".to_owned()));
    }

    #[test]
    fn round_trip_keeps_values_order_and_unknown_attributes() {
        let input = json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN, ROSTER_USER_URN],
            "externalId": "e-9",
            "userName": "grace",
            "name": {"formatted": "Rear Admiral Grace Hopper", "familyName": "Hopper", "givenName": "Grace",
                     "middleName": "Brewster", "honorificPrefix": "RADM", "honorificSuffix": "PhD"},
            "displayName": "Grace Hopper",
            "nickName": "Amazing Grace",
            "profileUrl": "https://example.com/grace",
            "title": "Admiral",
            "userType": "Employee",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/New_York",
            "active": false,
            "emails": [
                {"value": "b@example.com", "type": "home", "primary": false, "display": "B"},
                {"value": "a@example.com", "type": "work", "primary": true}
            ],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            "addresses": [{"streetAddress": "1 Navy Way", "locality": "Arlington", "primary": true}],
            "x509Certificates": [{"value": "MIIB..."}],
            "roles": [],
            "customThing": {"nested": [1, 2, {"deep": null}]},
            (ENTERPRISE_USER_URN): {"employeeNumber": "701984", "manager": [{"value": "m-1", "$ref": "x"}]},
            (ROSTER_USER_URN): {"role": "admin", "effectiveRole": "ignored"}
        });
        let parsed = user_from_scim(&input).unwrap();
        assert_eq!(parsed.user.role.as_deref(), Some("admin"));
        // Everything but the password, which the body does not carry.
        let expected: Vec<String> = WRITABLE_FIELDS
            .iter()
            .filter(|f| **f != "password")
            .map(|f| (*f).to_owned())
            .collect();
        assert_eq!(parsed.replace_mask(), expected);
        let mut with_password = input.clone();
        with_password["password"] = json!("pw");
        assert_eq!(
            user_from_scim(&with_password).unwrap().replace_mask(),
            vec!["*"]
        );
        let mut user = stored(parsed.user);
        user.groups = vec![GroupRef {
            id: "g-1".into(),
            display_name: "Engineering".into(),
        }];
        let out = user_to_scim(&user, BASE);

        // Every input attribute comes back with the same value.
        for (k, v) in input.as_object().unwrap() {
            if k == ROSTER_USER_URN || k == "schemas" {
                continue;
            }
            assert_eq!(&out[k], v, "{k}");
        }
        assert_eq!(
            out["schemas"],
            json!([USER_URN, ENTERPRISE_USER_URN, ROSTER_USER_URN])
        );
        assert_eq!(
            out[ROSTER_USER_URN],
            json!({"role": "admin", "effectiveRole": "admin"})
        );
        assert_eq!(out["id"], "u-1");
        assert!(out.get("password").is_none());
        assert_eq!(
            out["groups"],
            json!([{"value": "g-1", "display": "Engineering", "$ref": format!("{BASE}/Groups/g-1"), "type": "direct"}])
        );
        assert_eq!(
            out["meta"],
            json!({
                "resourceType": "User",
                "created": "2023-11-14T22:13:20Z",
                "lastModified": "2023-11-14T22:13:20Z",
                "location": format!("{BASE}/Users/u-1"),
                "version": "W/\"e1\""
            })
        );
        // Unknown attributes keep their order.
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap();
        assert!(pos("phoneNumbers") < pos("addresses"));
        assert!(pos("addresses") < pos("customThing"));
        assert!(pos("customThing") < pos(ENTERPRISE_USER_URN));

        // And the output reads back to the same proto user.
        let again = user_from_scim(&out).unwrap();
        let mut expected = user.clone();
        expected.id = String::new();
        expected.etag = String::new();
        expected.effective_role = String::new();
        expected.groups = vec![];
        expected.create_time = None;
        expected.update_time = None;
        assert_eq!(again.user, expected);
    }

    #[test]
    fn attribute_names_match_without_case_and_render_canonically() {
        let input = json!({
            "SCHEMAS": [USER_URN],
            "username": "x",
            "DisplayName": "X",
            "ACTIVE": "False",
            "phonenumbers": [{"value": "1"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"department": "R&D"},
            "Emails": [{"Value": "x@example.com", "Primary": "True"}]
        });
        let parsed = user_from_scim(&input).unwrap();
        assert_eq!(parsed.user.user_name, "x");
        assert!(!parsed.user.active);
        assert_eq!(parsed.user.emails[0].primary, Some(true));
        let out = user_to_scim(&stored(parsed.user), BASE);
        assert_eq!(out["displayName"], "X");
        assert_eq!(out["phoneNumbers"], json!([{"value": "1"}]));
        assert_eq!(out[ENTERPRISE_USER_URN], json!({"department": "R&D"}));
        assert_eq!(
            out["schemas"],
            json!([USER_URN, ENTERPRISE_USER_URN, ROSTER_USER_URN])
        );
    }

    #[test]
    fn entra_string_primaries_become_booleans() {
        let input = json!({
            "schemas": [USER_URN],
            "userName": "x",
            "roles": [{"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}],
            "phoneNumbers": [{"value": "1", "primary": "false"}, {"value": "2", "primary": "maybe"}]
        });
        let user = user_from_scim(&input).unwrap().user;
        let stored: Value = serde_json::from_str(&user.attributes_json).unwrap();
        assert_eq!(stored["roles"][0]["primary"], json!(true));
        assert_eq!(stored["phoneNumbers"][0]["primary"], json!(false));
        assert_eq!(stored["phoneNumbers"][1]["primary"], json!("maybe"));
    }

    #[test]
    fn nulls_are_absent() {
        let input = json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "userName": "n",
            "displayName": null,
            "name": null,
            "active": null,
            "roles": null,
            (ENTERPRISE_USER_URN): null
        });
        let parsed = user_from_scim(&input).unwrap();
        assert!(!parsed.active_given);
        assert_eq!(parsed.user.display_name, None);
        assert_eq!(parsed.user.name, None);
        assert_eq!(parsed.user.attributes_json, "{}");
        let mask = parsed.replace_mask();
        assert!(!mask.contains(&"active".to_owned()));
        assert!(!mask.contains(&"password".to_owned()));
        assert!(mask.contains(&"attributes_json".to_owned()));
    }

    #[test]
    fn bad_bodies_are_invalid_value() {
        let cases = [
            json!({"userName": "x"}),
            json!({"schemas": ["urn:example:unknown", USER_URN], "userName": "x"}),
            json!({"schemas": [USER_URN]}),
            json!({"schemas": [USER_URN], "userName": ""}),
            json!({"schemas": [USER_URN], "userName": 7}),
            json!({"schemas": [USER_URN], "userName": "x", "active": "maybe"}),
            json!({"schemas": [USER_URN], "userName": "x", "emails": [{"type": "work"}]}),
            json!({"schemas": [USER_URN], "userName": "x", "emails": "a@b"}),
            json!({"schemas": [USER_URN], "userName": "x", "name": "Ada"}),
        ];
        for case in cases {
            let err = user_from_scim(&case).unwrap_err();
            assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{case}");
        }
        assert_eq!(
            user_from_scim(&json!([1])).unwrap_err().scim_type,
            Some(ScimType::InvalidSyntax)
        );
    }

    #[test]
    fn read_only_input_is_ignored() {
        let input = json!({
            "schemas": [USER_URN],
            "id": "client-chosen",
            "userName": "x",
            "groups": [{"value": "g"}],
            "meta": {"resourceType": "User"}
        });
        let user = user_from_scim(&input).unwrap().user;
        assert_eq!(user.id, "");
        assert!(user.groups.is_empty());
        assert_eq!(user.attributes_json, "{}");
    }

    #[test]
    fn stored_attributes_never_shadow_mapped_ones() {
        let mut user = stored(
            user_from_scim(&json!({"schemas": [USER_URN], "userName": "x"}))
                .unwrap()
                .user,
        );
        user.attributes_json = json!({"userName": "evil", "password": "p", "ims": []}).to_string();
        let out = user_to_scim(&user, BASE);
        assert_eq!(out["userName"], "x");
        assert!(out.get("password").is_none());
        assert_eq!(out["ims"], json!([]));
    }
}
