//! SCIM Group (RFC 7643 §4.2) ↔ `roster.v1.Group`, and Group PATCH → one `UpdateGroup`.
//!
//! Group PATCH never reads the group: membership operations become `MemberOperation`s that the
//! service applies in one transaction, so their cost depends on the members named, not on the
//! group's size.

use roster_proto::v1::member_operation::Kind;
use roster_proto::v1::{Group, GroupView, Member, MemberOperation};
use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value, json};

use super::patch::{OpKind, PatchOperation};
use super::validate::{Resource, check_length};
use super::{ENTRA_GROUP_URN, GROUP_URN, as_object, check_schemas, get_ci, meta, opt_string};
use crate::error::{ScimError, ScimType};

/// The schemas a Group body may name (Entra adds its own).
const GROUP_SCHEMAS: &[&str] = &[GROUP_URN, ENTRA_GROUP_URN];

/// A SCIM Group body (POST, PUT) → proto. `id` and `meta` are ignored.
pub(crate) fn group_from_scim(doc: &Value) -> Result<Group, ScimError> {
    let map = as_object(doc, "a Group")?;
    check_schemas(map, GROUP_URN, GROUP_SCHEMAS)?;
    let display_name = match get_ci(map, "displayName") {
        Some(v) => opt_string("displayName", v)?,
        None => None,
    }
    .filter(|n| !n.trim().is_empty())
    .ok_or_else(|| ScimError::invalid_value("'displayName' is required"))?;
    let external_id = match get_ci(map, "externalId") {
        Some(v) => opt_string("externalId", v)?,
        None => None,
    };
    let members = match get_ci(map, "members") {
        Some(v) => member_ids(v)?,
        None => Vec::new(),
    };
    Ok(Group {
        display_name,
        external_id,
        members: members
            .into_iter()
            .map(|user_id| Member {
                user_id,
                display: String::new(),
            })
            .collect(),
        ..Group::default()
    })
}

/// The user ids of a `members` value: `[{"value": id, ...}]`, one such object, or `null`.
fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(m) => match get_ci(m, "value") {
                Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
                _ => Err(ScimError::invalid_value(
                    "each member needs a string 'value' (the user's id)",
                )),
            },
            _ => Err(ScimError::invalid_value(
                "each member must be an object with a 'value'",
            )),
        })
        .collect()
}

/// A proto Group → SCIM. `members` appears with the FULL view only.
pub(crate) fn group_to_scim(group: &Group, base: &str, view: GroupView) -> Value {
    let location = format!("{base}/Groups/{}", group.id);
    let mut doc = Map::new();
    doc.insert("schemas".into(), super::schemas(&[GROUP_URN]));
    doc.insert("id".into(), group.id.clone().into());
    if let Some(external_id) = &group.external_id {
        doc.insert("externalId".into(), external_id.clone().into());
    }
    doc.insert("displayName".into(), group.display_name.clone().into());
    if view == GroupView::Full {
        let members = group
            .members
            .iter()
            .map(|m| {
                json!({
                    "value": m.user_id,
                    "display": m.display,
                    "$ref": format!("{base}/Users/{}", m.user_id),
                    "type": "User",
                })
            })
            .collect();
        doc.insert("members".into(), Value::Array(members));
    }
    doc.insert(
        "meta".into(),
        meta(
            "Group",
            group.create_time.as_ref(),
            group.update_time.as_ref(),
            &location,
            &group.etag,
        ),
    );
    Value::Object(doc)
}

/// What a Group PATCH does, ready for one `UpdateGroupRequest`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct GroupChange {
    pub(crate) display_name: Option<String>,
    /// `Some(None)`: clear it.
    pub(crate) external_id: Option<Option<String>>,
    pub(crate) member_operations: Vec<MemberOperation>,
}

impl GroupChange {
    /// The proto group (fields to set) and the field mask naming them.
    pub(crate) fn fields(&self, id: &str) -> (Group, Vec<String>) {
        let mut mask = Vec::new();
        let mut group = Group {
            id: id.to_owned(),
            ..Group::default()
        };
        if let Some(name) = &self.display_name {
            group.display_name = name.clone();
            mask.push("display_name".to_owned());
        }
        if let Some(external_id) = &self.external_id {
            group.external_id = external_id.clone();
            mask.push("external_id".to_owned());
        }
        (group, mask)
    }

    /// Whether there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.external_id.is_none()
            && self.member_operations.is_empty()
    }

    fn members(&mut self, kind: Kind, user_ids: Vec<String>) {
        // Adding or removing nobody is nothing; REPLACE with nobody empties the group.
        if user_ids.is_empty() && matches!(kind, Kind::Add | Kind::Remove) {
            return;
        }
        self.member_operations.push(MemberOperation {
            kind: kind as i32,
            user_ids,
        });
    }

    fn set(
        &mut self,
        attribute: GroupAttr,
        kind: OpKind,
        value: Option<&Value>,
        group_id: &str,
    ) -> Result<(), ScimError> {
        let value = value.filter(|v| !v.is_null());
        match (attribute, kind) {
            (GroupAttr::Id, OpKind::Add | OpKind::Replace) => match value {
                Some(Value::String(id)) if id == group_id => Ok(()),
                _ => Err(ScimError::mutability("'id' cannot be changed")),
            },
            (GroupAttr::Id, OpKind::Remove) => Err(ScimError::mutability("'id' cannot be changed")),
            (GroupAttr::DisplayName, OpKind::Add | OpKind::Replace) => {
                let name = value
                    .map(|v| opt_string("displayName", v))
                    .transpose()?
                    .flatten()
                    .filter(|n| !n.trim().is_empty())
                    .ok_or_else(|| ScimError::invalid_value("'displayName' cannot be empty"))?;
                check_length(Resource::Group, "displayName", &name)?;
                self.display_name = Some(name);
                Ok(())
            }
            (GroupAttr::DisplayName, OpKind::Remove) => {
                Err(ScimError::invalid_value("'displayName' is required"))
            }
            (GroupAttr::ExternalId, OpKind::Remove) => {
                self.external_id = Some(None);
                Ok(())
            }
            (GroupAttr::ExternalId, _) => {
                let external_id = value
                    .map(|v| opt_string("externalId", v))
                    .transpose()?
                    .flatten();
                if let Some(e) = &external_id {
                    check_length(Resource::Group, "externalId", e)?;
                }
                self.external_id = Some(external_id);
                Ok(())
            }
            // Never read a missing list as "no members": emptying a group takes an explicit `[]`.
            (GroupAttr::Members, OpKind::Add | OpKind::Replace) => {
                let ids = member_ids(value.ok_or_else(|| {
                    ScimError::invalid_value("'members' needs a list of members (`[]` for none)")
                })?)?;
                let kind = if kind == OpKind::Add {
                    Kind::Add
                } else {
                    Kind::Replace
                };
                self.members(kind, ids);
                Ok(())
            }
            // Entra: remove with a value list removes only those members.
            (GroupAttr::Members, OpKind::Remove) => {
                match value {
                    None => self.members(Kind::RemoveAll, Vec::new()),
                    Some(v) => self.members(Kind::Remove, member_ids(v)?),
                }
                Ok(())
            }
            (GroupAttr::Ignored, _) => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum GroupAttr {
    Id,
    DisplayName,
    ExternalId,
    Members,
    /// `schemas`, `meta`: read-only, skipped in a pathless value.
    Ignored,
}

fn group_attr(name: &str) -> Option<GroupAttr> {
    [
        ("id", GroupAttr::Id),
        ("displayName", GroupAttr::DisplayName),
        ("externalId", GroupAttr::ExternalId),
        ("members", GroupAttr::Members),
        ("schemas", GroupAttr::Ignored),
        ("meta", GroupAttr::Ignored),
    ]
    .into_iter()
    .find(|(n, _)| n.eq_ignore_ascii_case(name))
    .map(|(_, a)| a)
}

fn unknown_attribute(path: &str) -> ScimError {
    ScimError::invalid_path(format!("'{path}' is not an attribute of a Group"))
}

/// Translates a Group PATCH into one change: every form Okta and Entra send.
pub(crate) fn plan_group_patch(
    group_id: &str,
    ops: &[PatchOperation],
) -> Result<GroupChange, ScimError> {
    let mut change = GroupChange::default();
    for op in ops {
        match &op.path {
            None => {
                if op.op == OpKind::Remove {
                    return Err(ScimError::no_target("a remove operation needs a 'path'"));
                }
                let Some(Value::Object(values)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "an operation without 'path' needs an object 'value'",
                    ));
                };
                for (key, value) in values {
                    let attribute = group_attr(key).ok_or_else(|| unknown_attribute(key))?;
                    // `null` is absent: `{"members": null}` must not empty the group.
                    if !value.is_null() {
                        change.set(attribute, op.op, Some(value), group_id)?;
                    }
                }
            }
            Some(path) => {
                let parsed: PatchPath = path.parse().map_err(|_| {
                    ScimError::invalid_path(format!("'{path}' is not a valid attribute path"))
                })?;
                match parsed {
                    PatchPath::Attr(attr) => {
                        check_group_uri(attr.uri.as_deref(), path)?;
                        if attr.sub_attr.is_some() {
                            return Err(unknown_attribute(path));
                        }
                        match group_attr(&attr.name) {
                            Some(GroupAttr::Ignored) => {
                                return Err(ScimError::mutability(format!(
                                    "'{path}' cannot be changed"
                                )));
                            }
                            Some(attribute) => {
                                change.set(attribute, op.op, op.value.as_ref(), group_id)?
                            }
                            None => return Err(unknown_attribute(path)),
                        }
                    }
                    PatchPath::Value(vp) => {
                        check_group_uri(vp.attr.uri.as_deref(), path)?;
                        let is_members = vp.attr.name.eq_ignore_ascii_case("members")
                            && vp.attr.sub_attr.is_none();
                        if !is_members || vp.sub_attr.is_some() || op.op != OpKind::Remove {
                            return Err(ScimError::invalid_path(format!(
                                "'{path}': only remove of members[value eq \"id\"] takes a filter"
                            )));
                        }
                        let ids = filtered_member_ids(&vp.filter).ok_or_else(|| {
                            ScimError::bad_request(
                                ScimType::InvalidFilter,
                                "a members filter must be value eq \"<user id>\" (or several joined by or)",
                            )
                        })?;
                        change.members(Kind::Remove, ids);
                    }
                }
            }
        }
    }
    Ok(change)
}

fn check_group_uri(uri: Option<&str>, path: &str) -> Result<(), ScimError> {
    match uri {
        None => Ok(()),
        Some(u) if u.eq_ignore_ascii_case(GROUP_URN) => Ok(()),
        Some(_) => Err(unknown_attribute(path)),
    }
}

/// The ids of `value eq "a"` or `value eq "a" or value eq "b"`.
fn filtered_member_ids(filter: &ValFilter) -> Option<Vec<String>> {
    let terms = match filter {
        ValFilter::Or(items) => items.iter().collect(),
        single => vec![single],
    };
    terms
        .into_iter()
        .map(|term| match term {
            ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(id)))
                if path.name.eq_ignore_ascii_case("value") && path.sub_attr.is_none() =>
            {
                Some(id.clone())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::PATCH_OP_URN;
    use crate::scim::patch::parse_patch_request;

    const BASE: &str = "https://r.example/scim/v2";

    fn change(ops: Value) -> Result<GroupChange, ScimError> {
        let ops =
            parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": ops})).unwrap();
        plan_group_patch("g-1", &ops)
    }

    fn op(kind: Kind, ids: &[&str]) -> MemberOperation {
        MemberOperation {
            kind: kind as i32,
            user_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn okta_rename_is_pathless_with_own_id() {
        let c =
            change(json!([{"op": "replace", "value": {"id": "g-1", "displayName": "Renamed"}}]))
                .unwrap();
        assert_eq!(c.display_name.as_deref(), Some("Renamed"));
        assert!(c.member_operations.is_empty());
        let (group, mask) = c.fields("g-1");
        assert_eq!(group.display_name, "Renamed");
        assert_eq!(group.id, "g-1");
        assert_eq!(mask, vec!["display_name"]);
        // Another id is a change of id.
        let err = change(json!([{"op": "replace", "value": {"id": "g-2", "displayName": "x"}}]))
            .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::Mutability));
    }

    #[test]
    fn okta_membership_push() {
        let c = change(json!([
            {"op": "remove", "path": "members[value eq \"u-1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u-2", "display": "b@example.com"}, {"value": "u-3"}]}
        ]))
        .unwrap();
        assert_eq!(
            c.member_operations,
            vec![op(Kind::Remove, &["u-1"]), op(Kind::Add, &["u-2", "u-3"])]
        );
    }

    #[test]
    fn okta_full_push_and_empty_push_replace() {
        let c = change(json!([{"op": "replace", "path": "members", "value": [{"value": "u-1"}, {"value": "u-2"}]}])).unwrap();
        assert_eq!(
            c.member_operations,
            vec![op(Kind::Replace, &["u-1", "u-2"])]
        );
        let c = change(json!([{"op": "replace", "path": "members", "value": []}])).unwrap();
        assert_eq!(c.member_operations, vec![op(Kind::Replace, &[])]);
        // members inside a pathless replace value replace the membership too.
        let c = change(json!([{"op": "replace", "value": {"displayName": "G", "members": [{"value": "u-9"}]}}])).unwrap();
        assert_eq!(c.member_operations, vec![op(Kind::Replace, &["u-9"])]);
        assert_eq!(c.display_name.as_deref(), Some("G"));
        // ... but a null or missing list never empties it.
        let c = change(
            json!([{"op": "replace", "value": {"id": "g-1", "displayName": "G", "members": null}}]),
        )
        .unwrap();
        assert!(c.member_operations.is_empty());
        for ops in [
            json!([{"op": "replace", "path": "members"}]),
            json!([{"op": "add", "path": "members", "value": null}]),
        ] {
            assert_eq!(
                change(ops.clone()).unwrap_err().scim_type,
                Some(ScimType::InvalidValue),
                "{ops}"
            );
        }
    }

    #[test]
    fn entra_add_and_remove_with_value_list() {
        let c = change(json!([
            {"op": "Add", "path": "members", "value": [{"value": "u-1"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u-2"}, {"value": "u-3"}]}
        ]))
        .unwrap();
        assert_eq!(
            c.member_operations,
            vec![op(Kind::Add, &["u-1"]), op(Kind::Remove, &["u-2", "u-3"])]
        );
        // An empty value list removes nobody, never everybody.
        let c = change(json!([{"op": "Remove", "path": "members", "value": []}])).unwrap();
        assert!(c.is_empty());
    }

    #[test]
    fn remove_members_without_value_removes_all() {
        let c = change(json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(c.member_operations, vec![op(Kind::RemoveAll, &[])]);
    }

    #[test]
    fn remove_filter_with_several_ids() {
        let c =
            change(json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]))
                .unwrap();
        assert_eq!(c.member_operations, vec![op(Kind::Remove, &["a", "b"])]);
        let err =
            change(json!([{"op": "remove", "path": "members[display eq \"x\"]"}])).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        let err = change(json!([{"op": "add", "path": "members[value eq \"a\"]", "value": {}}]))
            .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn simple_attribute_paths() {
        let c = change(json!([
            {"op": "replace", "path": "displayName", "value": "New"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:externalId", "value": "x-1"}
        ]))
        .unwrap();
        let (group, mask) = c.fields("g-1");
        assert_eq!(group.display_name, "New");
        assert_eq!(group.external_id.as_deref(), Some("x-1"));
        assert_eq!(mask, vec!["display_name", "external_id"]);
        let c = change(json!([{"op": "remove", "path": "externalId"}])).unwrap();
        assert_eq!(c.external_id, Some(None));
        for (ops, t) in [
            (
                json!([{"op": "remove", "path": "displayName"}]),
                ScimType::InvalidValue,
            ),
            (
                json!([{"op": "replace", "path": "description", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "meta", "value": {}}]),
                ScimType::Mutability,
            ),
            (json!([{"op": "remove"}]), ScimType::NoTarget),
            (
                json!([{"op": "add", "path": "members", "value": [{"display": "no id"}]}]),
                ScimType::InvalidValue,
            ),
        ] {
            assert_eq!(change(ops.clone()).unwrap_err().scim_type, Some(t), "{ops}");
        }
    }

    #[test]
    fn group_round_trip() {
        let input = json!({
            "schemas": [GROUP_URN, ENTRA_GROUP_URN],
            "displayName": "Engineering",
            "externalId": "okta-g-1",
            "members": [{"value": "u-1", "display": "Ada"}, {"value": "u-2"}]
        });
        let mut group = group_from_scim(&input).unwrap();
        assert_eq!(
            group
                .members
                .iter()
                .map(|m| m.user_id.as_str())
                .collect::<Vec<_>>(),
            ["u-1", "u-2"]
        );
        group.id = "g-1".into();
        group.etag = "7".into();
        group.members[0].display = "Ada".into();
        group.members[1].display = "bob".into();
        let out = group_to_scim(&group, BASE, GroupView::Full);
        assert_eq!(
            out,
            json!({
                "schemas": [GROUP_URN],
                "id": "g-1",
                "externalId": "okta-g-1",
                "displayName": "Engineering",
                "members": [
                    {"value": "u-1", "display": "Ada", "$ref": format!("{BASE}/Users/u-1"), "type": "User"},
                    {"value": "u-2", "display": "bob", "$ref": format!("{BASE}/Users/u-2"), "type": "User"}
                ],
                "meta": {"resourceType": "Group", "location": format!("{BASE}/Groups/g-1"), "version": "W/\"7\""}
            })
        );
        let basic = group_to_scim(&group, BASE, GroupView::Basic);
        assert!(basic.get("members").is_none());
        assert_eq!(group_from_scim(&out).unwrap().display_name, "Engineering");
    }

    #[test]
    fn bad_group_bodies() {
        for body in [
            json!({"displayName": "x"}),
            json!({"schemas": [GROUP_URN]}),
            json!({"schemas": [GROUP_URN, "urn:example:x"], "displayName": "x"}),
            json!({"schemas": [GROUP_URN], "displayName": "x", "members": [{"value": 3}]}),
        ] {
            assert_eq!(
                group_from_scim(&body).unwrap_err().scim_type,
                Some(ScimType::InvalidValue),
                "{body}"
            );
        }
    }
}
