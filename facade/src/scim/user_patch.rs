//! The fast path of a User PATCH: when every operation targets an attribute with its own proto
//! field (active, userName, name.*, password, the Roster role, ...), the PATCH becomes ONE
//! `UpdateUser` with a field mask, without reading the user first. Anything else (emails,
//! value filters, attributes kept in `attributes_json`) takes the general path: read, apply the
//! operations to the JSON document, write back conditionally.

use roster_proto::v1::User;
use scim_v2::filter::PatchPath;
use serde_json::Value;

use super::patch::{OpKind, PatchOperation};
use super::user::{NAME_PARTS, name_part, set_name_part};
use super::{ROSTER_USER_URN, USER_URN, bool_value, opt_string};
use crate::error::ScimError;

/// How to carry out a User PATCH.
#[derive(Debug, PartialEq)]
pub(crate) enum UserPatchPlan {
    /// One `UpdateUser` with `user` (its id still to be set) and `mask`.
    Fast { user: Box<User>, mask: Vec<String> },
    /// Read-modify-write of the whole document.
    General,
}

/// Attributes with a proto field of their own, and their field-mask paths.
const TEXT_FIELDS: [(&str, &str); 9] = [
    ("externalId", "external_id"),
    ("displayName", "display_name"),
    ("nickName", "nick_name"),
    ("profileUrl", "profile_url"),
    ("title", "title"),
    ("userType", "user_type"),
    ("preferredLanguage", "preferred_language"),
    ("locale", "locale"),
    ("timezone", "timezone"),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Active,
    UserName,
    Password,
    /// An optional string field, by mask path.
    Text(&'static str),
    /// The whole `name`.
    Name,
    /// One `name` sub-attribute, by mask path (`given_name`).
    NamePart(&'static str),
    Role,
    /// The whole Roster extension object.
    Roster,
}

/// Read-only attributes: ignored as keys of a pathless value.
const READ_ONLY: [&str; 4] = ["id", "meta", "groups", "schemas"];

/// The fast field a path names, if any.
fn fast_field(path: &str) -> Option<Field> {
    let path = path.trim();
    if path.eq_ignore_ascii_case(ROSTER_USER_URN) {
        return Some(Field::Roster);
    }
    let PatchPath::Attr(attr) = path.parse::<PatchPath>().ok()? else {
        return None;
    };
    match attr.uri.as_deref() {
        None => {}
        Some(uri) if uri.eq_ignore_ascii_case(USER_URN) => {}
        Some(uri) if uri.eq_ignore_ascii_case(ROSTER_USER_URN) => {
            return (attr.name.eq_ignore_ascii_case("role") && attr.sub_attr.is_none())
                .then_some(Field::Role);
        }
        Some(_) => return None,
    }
    let name = attr.name.as_str();
    if name.eq_ignore_ascii_case("name") {
        return match &attr.sub_attr {
            None => Some(Field::Name),
            Some(sub) => name_part(sub).map(|(_, mask)| Field::NamePart(mask)),
        };
    }
    if attr.sub_attr.is_some() {
        return None;
    }
    if name.eq_ignore_ascii_case("active") {
        Some(Field::Active)
    } else if name.eq_ignore_ascii_case("userName") {
        Some(Field::UserName)
    } else if name.eq_ignore_ascii_case("password") {
        Some(Field::Password)
    } else {
        TEXT_FIELDS
            .iter()
            .find(|(scim, _)| scim.eq_ignore_ascii_case(name))
            .map(|(_, mask)| Field::Text(mask))
    }
}

#[derive(Default)]
struct FastUpdate {
    user: User,
    mask: Vec<String>,
}

impl FastUpdate {
    fn mark(&mut self, path: &str) {
        if !self.mask.iter().any(|m| m == path) {
            self.mask.push(path.to_owned());
        }
    }

    fn text_slot(&mut self, mask: &str) -> &mut Option<String> {
        let u = &mut self.user;
        match mask {
            "external_id" => &mut u.external_id,
            "display_name" => &mut u.display_name,
            "nick_name" => &mut u.nick_name,
            "profile_url" => &mut u.profile_url,
            "title" => &mut u.title,
            "user_type" => &mut u.user_type,
            "preferred_language" => &mut u.preferred_language,
            "locale" => &mut u.locale,
            _ => &mut u.timezone,
        }
    }

    fn set_name_part(&mut self, mask: &'static str, value: Option<String>) {
        set_name_part(self.user.name.get_or_insert_default(), mask, value);
        self.mark(&format!("name.{mask}"));
    }

    /// Sets `field` to `value` (`None`: cleared). `Ok(false)`: not expressible on the fast path.
    fn assign(&mut self, field: Field, value: Option<&Value>) -> Result<bool, ScimError> {
        let value = value.filter(|v| !v.is_null());
        match (field, value) {
            // Removing `active` leaves it unassigned (RFC 7644 §3.5.2.2), which denies like
            // `active: false`.
            (Field::Active, None) => {
                self.user.active = false;
                self.user.active_unassigned = true;
                self.mark("active");
            }
            // Clearing these is not a plain field write: let the general path judge.
            (Field::UserName | Field::Password, None) => return Ok(false),
            (Field::Active, Some(v)) => {
                self.user.active = bool_value("active", v)?;
                self.mark("active");
            }
            (Field::UserName, Some(v)) => match opt_string("userName", v)? {
                Some(name) if !name.trim().is_empty() => {
                    self.user.user_name = name;
                    self.mark("user_name");
                }
                _ => return Ok(false),
            },
            (Field::Password, Some(v)) => {
                self.user.password = opt_string("password", v)?;
                self.mark("password");
            }
            (Field::Text(mask), v) => {
                let text = v.map(|v| opt_string(mask, v)).transpose()?.flatten();
                *self.text_slot(mask) = text;
                self.mark(mask);
            }
            (Field::NamePart(mask), v) => {
                let text = v.map(|v| opt_string("name", v)).transpose()?.flatten();
                self.set_name_part(mask, text);
            }
            (Field::Name, None) => {
                for (_, mask) in NAME_PARTS {
                    self.set_name_part(mask, None);
                }
            }
            // add/replace of a complex attribute sets the sub-attributes given, keeps the rest.
            (Field::Name, Some(Value::Object(parts))) => {
                for (key, v) in parts {
                    let Some((_, mask)) = name_part(key) else {
                        return Ok(false);
                    };
                    self.set_name_part(mask, opt_string("name", v)?);
                }
            }
            (Field::Name, Some(_)) => {
                return Err(ScimError::invalid_value("'name' must be an object"));
            }
            (Field::Role, v) => {
                self.user.role = v.map(|v| opt_string("role", v)).transpose()?.flatten();
                self.mark("role");
            }
            (Field::Roster, None) => {
                self.user.role = None;
                self.mark("role");
            }
            (Field::Roster, Some(Value::Object(attrs))) => {
                for (key, v) in attrs {
                    if key.eq_ignore_ascii_case("role") {
                        self.assign(Field::Role, Some(v))?;
                    }
                }
            }
            (Field::Roster, Some(_)) => {
                return Err(ScimError::invalid_value(format!(
                    "'{ROSTER_USER_URN}' must be an object"
                )));
            }
        }
        Ok(true)
    }

    fn apply(&mut self, op: &PatchOperation) -> Result<bool, ScimError> {
        match (&op.path, op.op) {
            (Some(path), kind) => {
                let Some(field) = fast_field(path) else {
                    return Ok(false);
                };
                let value = if kind == OpKind::Remove {
                    None
                } else {
                    op.value.as_ref()
                };
                self.assign(field, value)
            }
            (None, OpKind::Add | OpKind::Replace) => {
                let Some(Value::Object(values)) = &op.value else {
                    return Ok(false);
                };
                for (key, value) in values {
                    if READ_ONLY.iter().any(|r| r.eq_ignore_ascii_case(key)) {
                        continue;
                    }
                    let Some(field) = fast_field(key) else {
                        return Ok(false);
                    };
                    if !self.assign(field, Some(value))? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            (None, OpKind::Remove) => Ok(false),
        }
    }
}

/// Chooses the path for `ops`. Type errors in values of fast fields are reported here.
pub(crate) fn plan_user_patch(ops: &[PatchOperation]) -> Result<UserPatchPlan, ScimError> {
    let mut fast = FastUpdate::default();
    for op in ops {
        if !fast.apply(op)? {
            return Ok(UserPatchPlan::General);
        }
    }
    if fast.mask.is_empty() {
        return Ok(UserPatchPlan::General);
    }
    Ok(UserPatchPlan::Fast {
        user: Box::new(fast.user),
        mask: fast.mask,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::PATCH_OP_URN;
    use crate::scim::patch::parse_patch_request;
    use roster_proto::v1::PersonName;
    use serde_json::json;

    fn plan(ops: Value) -> UserPatchPlan {
        let ops =
            parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": ops})).unwrap();
        plan_user_patch(&ops).unwrap()
    }

    fn fast(ops: Value) -> (User, Vec<String>) {
        match plan(ops) {
            UserPatchPlan::Fast { user, mask } => (*user, mask),
            UserPatchPlan::General => unreachable!("expected the fast path"),
        }
    }

    #[test]
    fn okta_deactivate_is_one_masked_update() {
        let (user, mask) = fast(json!([{"op": "replace", "value": {"active": false}}]));
        assert!(!user.active);
        assert_eq!(mask, vec!["active"]);
        let (user, mask) = fast(json!([{"op": "replace", "path": "active", "value": true}]));
        assert!(user.active);
        assert_eq!(mask, vec!["active"]);
    }

    #[test]
    fn entra_string_booleans_and_capitalised_ops() {
        let (user, mask) = fast(json!([{"op": "Replace", "path": "active", "value": "False"}]));
        assert!(!user.active);
        assert_eq!(mask, vec!["active"]);
    }

    #[test]
    fn okta_password_sync() {
        let (user, mask) = fast(json!([{"op": "replace", "path": "password", "value": "n3w!"}]));
        assert_eq!(user.password.as_deref(), Some("n3w!"));
        assert_eq!(mask, vec!["password"]);
    }

    #[test]
    fn name_paths_set_only_the_parts_named() {
        let (user, mask) = fast(json!([
            {"op": "replace", "path": "name.givenName", "value": "Ada"},
            {"op": "Replace", "path": "name", "value": {"familyName": "Lovelace"}},
            {"op": "remove", "path": "name.middleName"}
        ]));
        assert_eq!(
            user.name,
            Some(PersonName {
                given_name: Some("Ada".into()),
                family_name: Some("Lovelace".into()),
                ..PersonName::default()
            })
        );
        assert_eq!(
            mask,
            vec!["name.given_name", "name.family_name", "name.middle_name"]
        );
    }

    #[test]
    fn entra_pathless_dotted_and_qualified_keys() {
        let (user, mask) = fast(json!([{"op": "Replace", "value": {
            "name.givenName": "Grace",
            "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Grace H",
            "externalId": "e-1",
            "userName": "grace@example.com",
            "title": null
        }}]));
        assert_eq!(user.name.unwrap().given_name.as_deref(), Some("Grace"));
        assert_eq!(user.display_name.as_deref(), Some("Grace H"));
        assert_eq!(user.external_id.as_deref(), Some("e-1"));
        assert_eq!(user.user_name, "grace@example.com");
        assert_eq!(user.title, None);
        assert_eq!(
            mask,
            vec![
                "name.given_name",
                "display_name",
                "external_id",
                "user_name",
                "title"
            ]
        );
    }

    #[test]
    fn roster_role_paths() {
        let (user, mask) = fast(
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:roster:2.0:User:role", "value": "admin"}]),
        );
        assert_eq!(user.role.as_deref(), Some("admin"));
        assert_eq!(mask, vec!["role"]);
        let (user, mask) = fast(
            json!([{"op": "add", "path": ROSTER_USER_URN, "value": {"role": "viewer", "effectiveRole": "x"}}]),
        );
        assert_eq!(user.role.as_deref(), Some("viewer"));
        assert_eq!(mask, vec!["role"]);
        let (user, mask) = fast(json!([{"op": "remove", "path": ROSTER_USER_URN}]));
        assert_eq!(user.role, None);
        assert_eq!(mask, vec!["role"]);
    }

    #[test]
    fn removing_active_leaves_it_unassigned() {
        for ops in [
            json!([{"op": "remove", "path": "active"}]),
            json!([{"op": "Replace", "path": "active", "value": null}]),
        ] {
            let (user, mask) = fast(ops);
            assert!(!user.active && user.active_unassigned);
            assert_eq!(mask, vec!["active"]);
        }
        let (user, _) = fast(json!([{"op": "replace", "path": "active", "value": true}]));
        assert!(user.active && !user.active_unassigned);
    }

    #[test]
    fn removing_an_optional_field_clears_it() {
        let (user, mask) = fast(json!([{"op": "remove", "path": "externalId"}]));
        assert_eq!(user.external_id, None);
        assert_eq!(mask, vec!["external_id"]);
    }

    #[test]
    fn anything_else_takes_the_general_path() {
        for ops in [
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "x"}]),
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "1"}]),
            json!([{"op": "replace", "value": {"active": false, "phoneNumbers": []}}]),
            json!([{"op": "replace", "path": "active", "value": false}, {"op": "add", "path": "emails", "value": []}]),
            json!([{"op": "replace", "path": "name", "value": {"givenName": "A", "nickname": "x"}}]),
            json!([{"op": "replace", "value": {"id": "only-read-only"}}]),
            json!([{"op": "replace", "path": "not a path", "value": 1}]),
        ] {
            assert_eq!(plan(ops.clone()), UserPatchPlan::General, "{ops}");
        }
    }

    #[test]
    fn bad_values_on_fast_fields_are_invalid_value() {
        for ops in [
            json!([{"op": "replace", "path": "active", "value": "maybe"}]),
            json!([{"op": "replace", "path": "title", "value": 3}]),
            json!([{"op": "replace", "path": "name", "value": "Ada"}]),
        ] {
            let parsed =
                parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": ops}))
                    .unwrap();
            let err = plan_user_patch(&parsed).unwrap_err();
            assert_eq!(
                err.scim_type,
                Some(crate::error::ScimType::InvalidValue),
                "{ops}"
            );
        }
    }
}
