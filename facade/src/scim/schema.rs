//! The schema documents served at `/Schemas` (RFC 7643 §7): what Roster stores and returns for a
//! User and a Group, attribute by attribute.
//!
//! They describe Roster, not the RFC's full model: `userName` and `emails` compare without case
//! because the service indexes them lower-cased; `id`, `externalId` and member ids compare
//! exactly; a group's `displayName` is required and unique; a group's members are users only.
//! The standard multi-valued attributes Roster keeps verbatim (`phoneNumbers`, `addresses`,
//! `ims`, `photos`, `entitlements`, `roles`, `x509Certificates`) and the enterprise extension
//! are declared with the RFC's sub-attributes and say that they are stored as given.
//!
//! Microsoft's SCIM validator, in its "discover schema" mode, reports `emails.display`,
//! `emails.primary` and `password` as "not supported by the SCIM protocol" (scimmy-routers #10,
//! sourcegraph #62185). They are RFC 7643 §4.1 attributes that Roster stores (`password` per the
//! tenant's policy) and returns, so they stay declared: removing them would misdescribe Roster
//! to every other client, and Entra's provisioning service itself does not reject them. The
//! validator's manual mode (choosing the attributes to test) is unaffected.

use serde_json::{Map, Value, json};

use super::{ENTERPRISE_USER_URN, GROUP_URN, ROSTER_USER_URN, USER_URN};

pub(crate) const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// The roles of the default catalog (the Roster extension's `role`).
const ROLES: &[&str] = &["admin", "developer", "templates", "reporting"];

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    String,
    Boolean,
    Binary,
    Reference,
    Complex,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Binary => "binary",
            Type::Reference => "reference",
            Type::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Returned {
    Always,
    Never,
    Default,
}

impl Returned {
    fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
        }
    }
}

/// One attribute definition (RFC 7643 §7), built with the defaults of RFC 7643 §2.2:
/// optional, single-valued, case-insensitive, readWrite, returned by default, not unique.
#[derive(Debug, Clone)]
struct Attr {
    name: &'static str,
    kind: Type,
    multi_valued: bool,
    description: &'static str,
    required: bool,
    case_exact: bool,
    mutability: Mutability,
    returned: Returned,
    unique: bool,
    canonical_values: &'static [&'static str],
    reference_types: &'static [&'static str],
    sub_attributes: Vec<Attr>,
}

fn attr(name: &'static str, kind: Type, description: &'static str) -> Attr {
    Attr {
        name,
        kind,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: Vec::new(),
    }
}

fn string(name: &'static str, description: &'static str) -> Attr {
    attr(name, Type::String, description)
}

fn boolean(name: &'static str, description: &'static str) -> Attr {
    attr(name, Type::Boolean, description)
}

fn reference(
    name: &'static str,
    reference_types: &'static [&'static str],
    description: &'static str,
) -> Attr {
    Attr {
        reference_types,
        ..attr(name, Type::Reference, description)
    }
}

fn complex(name: &'static str, description: &'static str, sub_attributes: Vec<Attr>) -> Attr {
    Attr {
        sub_attributes,
        ..attr(name, Type::Complex, description)
    }
}

impl Attr {
    fn multi_valued(mut self) -> Self {
        self.multi_valued = true;
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    fn mutability(mut self, mutability: Mutability) -> Self {
        self.mutability = mutability;
        self
    }

    fn read_only(self) -> Self {
        self.mutability(Mutability::ReadOnly)
    }

    fn returned(mut self, returned: Returned) -> Self {
        self.returned = returned;
        self
    }

    /// `uniqueness: server` (unique within the tenant).
    fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    /// The attribute's JSON definition, keys in the order of RFC 7643 §8.7.1.
    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), self.name.into());
        out.insert("type".into(), self.kind.as_str().into());
        if self.kind == Type::Complex {
            let subs = self.sub_attributes.iter().map(Attr::to_json).collect();
            out.insert("subAttributes".into(), Value::Array(subs));
        }
        out.insert("multiValued".into(), self.multi_valued.into());
        out.insert("description".into(), self.description.into());
        out.insert("required".into(), self.required.into());
        if !self.canonical_values.is_empty() {
            out.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        out.insert("caseExact".into(), self.case_exact.into());
        out.insert("mutability".into(), self.mutability.as_str().into());
        out.insert("returned".into(), self.returned.as_str().into());
        let uniqueness = if self.unique { "server" } else { "none" };
        out.insert("uniqueness".into(), uniqueness.into());
        if self.kind == Type::Reference {
            out.insert("referenceTypes".into(), json!(self.reference_types));
        }
        Value::Object(out)
    }
}

/// A schema resource without `meta` (added per request: its location depends on the base URL).
fn schema(id: &str, name: &str, description: &str, attributes: &[Attr]) -> Value {
    json!({
        "schemas": [SCHEMA_URN],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attributes.iter().map(Attr::to_json).collect::<Vec<_>>(),
    })
}

fn id_attribute() -> Attr {
    string(
        "id",
        "Unique identifier of the resource, assigned by Roster (a UUID). Ignored on input.",
    )
    .case_exact()
    .read_only()
    .returned(Returned::Always)
    .unique()
}

fn external_id_attribute() -> Attr {
    string(
        "externalId",
        "The identity provider's own identifier for the resource, compared exactly.",
    )
    .case_exact()
}

/// `value`, `display`, `type` and `primary`: the sub-attributes of RFC 7643 §2.4's standard
/// multi-valued attributes.
fn standard_multi_valued(
    name: &'static str,
    description: &'static str,
    value: Attr,
    types: &'static [&'static str],
) -> Attr {
    complex(
        name,
        description,
        vec![
            value,
            string(
                "display",
                "A human-readable name, primarily used for display purposes.",
            ),
            string("type", "A label indicating the attribute's function.").canonical(types),
            boolean(
                "primary",
                "Whether this is the primary value of the attribute. Entra's \"True\"/\"False\" \
                 strings are stored as booleans.",
            ),
        ],
    )
    .multi_valued()
}

/// `urn:ietf:params:scim:schemas:core:2.0:User` (RFC 7643 §4.1) as Roster implements it.
pub(crate) fn user_schema() -> Value {
    let name_part = |name, description| string(name, description);
    let attributes = [
        id_attribute(),
        external_id_attribute(),
        string(
            "userName",
            "Unique identifier for the User, used by the user to sign in. Unique within the \
             tenant, compared without letter case, kept exactly as written.",
        )
        .required()
        .unique(),
        complex(
            "name",
            "The components of the user's real name.",
            vec![
                name_part(
                    "formatted",
                    "The full name, including all middle names, titles and suffixes, formatted \
                     for display.",
                ),
                name_part("familyName", "The family name of the User (last name)."),
                name_part("givenName", "The given name of the User (first name)."),
                name_part("middleName", "The middle name(s) of the User."),
                name_part(
                    "honorificPrefix",
                    "The honorific prefix(es) of the User (e.g. 'Ms.').",
                ),
                name_part(
                    "honorificSuffix",
                    "The honorific suffix(es) of the User (e.g. 'III').",
                ),
            ],
        ),
        string(
            "displayName",
            "The name of the User, suitable for display to end-users.",
        ),
        string(
            "nickName",
            "The casual way to address the user in real life.",
        ),
        reference(
            "profileUrl",
            &["external"],
            "A fully qualified URL pointing to a page representing the User's online profile.",
        ),
        string("title", "The user's title, such as \"Vice President\"."),
        string(
            "userType",
            "The relationship between the organization and the user, e.g. \"Employee\".",
        ),
        string(
            "preferredLanguage",
            "The User's preferred written or spoken language (RFC 7231 Accept-Language \
             format, e.g. \"en-US\").",
        ),
        string(
            "locale",
            "The User's default location for localization (e.g. \"en-US\").",
        ),
        string(
            "timezone",
            "The User's time zone in IANA Time Zone database format (e.g. \"America/New_York\").",
        ),
        boolean(
            "active",
            "The User's administrative status. A deactivated user stays readable and \
             filterable. Defaults to true when a created user omits it.",
        ),
        string(
            "password",
            "The User's cleartext password, accepted on create, replace and PATCH. Dropped or \
             stored as an Argon2id hash only, by the tenant's password policy; never returned.",
        )
        .mutability(Mutability::WriteOnly)
        .returned(Returned::Never),
        complex(
            "emails",
            "Email addresses for the User, kept in the order written. Compared without letter \
             case.",
            vec![
                string("value", "The email address.").required(),
                string(
                    "display",
                    "A human-readable name, primarily used for display purposes.",
                ),
                string("type", "A label indicating the attribute's function.")
                    .canonical(&["work", "home", "other"]),
                boolean(
                    "primary",
                    "Whether this is the User's primary email address. Entra's \
                     \"True\"/\"False\" strings are accepted.",
                ),
            ],
        )
        .multi_valued(),
        standard_multi_valued(
            "phoneNumbers",
            "Phone numbers for the User. Roster stores and returns them as given, without \
             validating them.",
            string("value", "The phone number."),
            &["work", "home", "mobile", "fax", "pager", "other"],
        ),
        standard_multi_valued(
            "ims",
            "Instant messaging addresses for the User. Roster stores and returns them as given, \
             without validating them.",
            string("value", "The instant messaging address."),
            &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
        ),
        standard_multi_valued(
            "photos",
            "URLs of images of the User. Roster stores and returns them as given, without \
             validating them.",
            reference("value", &["external"], "The URL of the image."),
            &["photo", "thumbnail"],
        ),
        complex(
            "addresses",
            "Physical mailing addresses for the User. Roster stores and returns them as given, \
             without validating them.",
            vec![
                string(
                    "formatted",
                    "The full mailing address, formatted for display or use with a mailing label.",
                ),
                string(
                    "streetAddress",
                    "The full street address component: house number, street name, P.O. box, \
                     and multi-line extended street address information.",
                ),
                string("locality", "The city or locality component."),
                string("region", "The state or region component."),
                string("postalCode", "The zip code or postal code component."),
                string(
                    "country",
                    "The country name component (ISO 3166-1 alpha-2 code).",
                ),
                string("type", "A label indicating the attribute's function.")
                    .canonical(&["work", "home", "other"]),
                boolean(
                    "primary",
                    "Whether this is the User's primary mailing address. Entra's \
                     \"True\"/\"False\" strings are stored as booleans.",
                ),
            ],
        )
        .multi_valued(),
        complex(
            "groups",
            "The groups the User belongs to (direct memberships only: Roster has no nested \
             groups). Read-only: change memberships through the Group resource.",
            vec![
                string("value", "The id of the Group.")
                    .case_exact()
                    .read_only(),
                reference("$ref", &["Group"], "The URI of the Group.").read_only(),
                string("display", "The Group's displayName.").read_only(),
                string("type", "How the membership is derived: always \"direct\".")
                    .canonical(&["direct"])
                    .read_only(),
            ],
        )
        .multi_valued()
        .read_only(),
        standard_multi_valued(
            "entitlements",
            "Entitlements of the User. Roster stores and returns them as given, without \
             interpreting them.",
            string("value", "The value of an entitlement."),
            &[],
        ),
        standard_multi_valued(
            "roles",
            "Roles of the User as the identity provider names them. Roster stores and returns \
             them as given, without interpreting them: the role Roster enforces is the Roster \
             extension's 'role'.",
            string("value", "The value of a role."),
            &[],
        ),
        standard_multi_valued(
            "x509Certificates",
            "X.509 certificates of the User. Roster stores and returns them as given, without \
             validating them.",
            attr(
                "value",
                Type::Binary,
                "The value of an X.509 certificate (base64, DER).",
            ),
            &[],
        ),
    ];
    schema(USER_URN, "User", "User Account", &attributes)
}

/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` (RFC 7643 §4.3), stored as given.
pub(crate) fn enterprise_user_schema() -> Value {
    let attributes = [
        string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person by the organization.",
        ),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        complex(
            "manager",
            "The User's manager. Stored and returned as given: Roster neither resolves the \
             manager nor fills in displayName.",
            vec![
                string(
                    "value",
                    "The id of the SCIM resource representing the User's manager.",
                ),
                reference(
                    "$ref",
                    &["User"],
                    "The URI of the SCIM resource representing the User's manager.",
                ),
                string("displayName", "The displayName of the User's manager."),
            ],
        ),
    ];
    schema(
        ENTERPRISE_USER_URN,
        "EnterpriseUser",
        "Enterprise User. Roster stores and returns this extension as given, without \
         interpreting it.",
        &attributes,
    )
}

/// `urn:ietf:params:scim:schemas:extension:roster:2.0:User`: the role Roster enforces.
pub(crate) fn roster_user_schema() -> Value {
    let attributes = [
        string(
            "role",
            "The role assigned to the User itself, one of the tenant's roles. When absent, the \
             User's groups' role mappings and then the tenant's default decide. Leaving the \
             extension out of a replace keeps the assigned role.",
        )
        .canonical(ROLES),
        string(
            "effectiveRole",
            "The role in force: the assigned role, else the role of the User's highest-priority \
             mapped group, else the tenant's default.",
        )
        .canonical(ROLES)
        .read_only(),
        string(
            "roleSource",
            "Where effectiveRole comes from: the User's own role attribute, a group mapped to a \
             role, or the tenant's default.",
        )
        .canonical(&["attribute", "group", "default"])
        .read_only(),
    ];
    schema(
        ROSTER_USER_URN,
        "RosterUser",
        "Roster's role of a User",
        &attributes,
    )
}

/// `urn:ietf:params:scim:schemas:core:2.0:Group` (RFC 7643 §4.2) as Roster implements it.
pub(crate) fn group_schema() -> Value {
    let attributes = [
        id_attribute(),
        external_id_attribute(),
        string(
            "displayName",
            "A human-readable name for the Group. Unique within the tenant, compared without \
             letter case.",
        )
        .required()
        .unique(),
        complex(
            "members",
            "The members of the Group: users only (Roster has no nested groups). Left out when \
             excludedAttributes names it.",
            vec![
                string("value", "The id of the member User.")
                    .case_exact()
                    .mutability(Mutability::Immutable),
                // Immutable, as in RFC 7643 §8.7.1: a client may send it (Roster reads `value`).
                reference("$ref", &["User"], "The URI of the member User.")
                    .mutability(Mutability::Immutable),
                string("display", "The member User's displayName (or userName).").read_only(),
                string("type", "The type of the member: always \"User\".")
                    .canonical(&["User"])
                    .read_only(),
            ],
        )
        .multi_valued(),
    ];
    schema(GROUP_URN, "Group", "Group", &attributes)
}

/// Every schema served, in the order of `/Schemas`.
pub(crate) fn all() -> Vec<Value> {
    vec![
        user_schema(),
        enterprise_user_schema(),
        roster_user_schema(),
        group_schema(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 9] = [
        "name",
        "type",
        "multiValued",
        "description",
        "required",
        "caseExact",
        "mutability",
        "returned",
        "uniqueness",
    ];

    /// Checks one level of attribute definitions: every characteristic present and valid,
    /// names unique without regard to case; sub-attributes only on complex, one level deep.
    fn check_attributes(attributes: &Value, depth: usize, path: &str) {
        let list = attributes.as_array().unwrap();
        assert!(!list.is_empty(), "{path}: no attributes");
        let mut names: Vec<String> = Vec::new();
        for a in list {
            let name = a["name"].as_str().unwrap();
            let here = format!("{path}.{name}");
            for key in KEYS {
                assert!(a.get(key).is_some(), "{here}: no {key}");
            }
            assert!(
                !names.iter().any(|n| n.eq_ignore_ascii_case(name)),
                "{here}: declared twice"
            );
            names.push(name.to_owned());
            let kind = a["type"].as_str().unwrap();
            assert!(
                [
                    "string",
                    "boolean",
                    "decimal",
                    "integer",
                    "dateTime",
                    "binary",
                    "reference",
                    "complex"
                ]
                .contains(&kind),
                "{here}: type {kind}"
            );
            assert!(
                ["readOnly", "readWrite", "immutable", "writeOnly"]
                    .contains(&a["mutability"].as_str().unwrap()),
                "{here}"
            );
            assert!(
                ["always", "never", "default", "request"]
                    .contains(&a["returned"].as_str().unwrap()),
                "{here}"
            );
            assert!(
                ["none", "server", "global"].contains(&a["uniqueness"].as_str().unwrap()),
                "{here}"
            );
            assert_eq!(
                a.get("referenceTypes").is_some(),
                kind == "reference",
                "{here}: referenceTypes"
            );
            if kind == "complex" {
                assert_eq!(depth, 0, "{here}: complex attributes nest one level only");
                check_attributes(&a["subAttributes"], depth + 1, &here);
            } else {
                assert!(a.get("subAttributes").is_none(), "{here}");
            }
            if a["mutability"] == "writeOnly" {
                assert_eq!(
                    a["returned"], "never",
                    "{here}: writeOnly is never returned"
                );
            }
        }
    }

    #[test]
    fn every_schema_is_well_formed() {
        let all = all();
        let ids: Vec<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            vec![USER_URN, ENTERPRISE_USER_URN, ROSTER_USER_URN, GROUP_URN]
        );
        for s in &all {
            assert_eq!(s["schemas"], json!([SCHEMA_URN]));
            assert!(s["name"].is_string() && s["description"].is_string());
            check_attributes(&s["attributes"], 0, s["id"].as_str().unwrap());
        }
    }

    fn find<'a>(schema: &'a Value, name: &str) -> &'a Value {
        schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} not declared"))
    }

    fn sub<'a>(attribute: &'a Value, name: &str) -> &'a Value {
        attribute["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("{name} not declared"))
    }

    #[test]
    fn key_characteristics() {
        let user = user_schema();
        let id = find(&user, "id");
        assert_eq!(
            (
                &id["mutability"],
                &id["returned"],
                &id["uniqueness"],
                &id["caseExact"]
            ),
            (
                &json!("readOnly"),
                &json!("always"),
                &json!("server"),
                &json!(true)
            )
        );
        let user_name = find(&user, "userName");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["uniqueness"], "server");
        assert_eq!(find(&user, "externalId")["caseExact"], true);
        let password = find(&user, "password");
        assert_eq!(password["mutability"], "writeOnly");
        assert_eq!(password["returned"], "never");
        let emails = find(&user, "emails");
        assert_eq!(emails["multiValued"], true);
        for s in ["value", "type", "primary", "display"] {
            sub(emails, s);
        }
        assert_eq!(sub(emails, "primary")["type"], "boolean");
        assert_eq!(find(&user, "groups")["mutability"], "readOnly");
        assert_eq!(find(&user, "active")["type"], "boolean");

        let roster = roster_user_schema();
        let role = find(&roster, "role");
        assert_eq!(role["mutability"], "readWrite");
        assert_eq!(role["canonicalValues"], json!(ROLES));
        assert_eq!(find(&roster, "effectiveRole")["mutability"], "readOnly");

        let enterprise = enterprise_user_schema();
        let manager = find(&enterprise, "manager");
        for s in ["value", "$ref", "displayName"] {
            sub(manager, s);
        }

        let group = group_schema();
        let display_name = find(&group, "displayName");
        assert_eq!(display_name["required"], true);
        assert_eq!(display_name["uniqueness"], "server");
        assert_eq!(display_name["caseExact"], false);
        let members = find(&group, "members");
        assert_eq!(members["multiValued"], true);
        assert_eq!(sub(members, "value")["mutability"], "immutable");
        assert_eq!(sub(members, "display")["mutability"], "readOnly");
        sub(members, "$ref");
        sub(members, "type");
    }

    #[test]
    fn every_attribute_the_user_converter_knows_is_declared() {
        // `schemas` and `meta` are common attributes (RFC 7643 §3), not schema attributes.
        let user = user_schema();
        for name in crate::scim::user::MAPPED
            .iter()
            .chain(crate::scim::user::PASSTHROUGH)
        {
            match *name {
                "schemas" | "meta" => {}
                ENTERPRISE_USER_URN | ROSTER_USER_URN => {}
                name => {
                    find(&user, name);
                }
            }
        }
        for (scim, _) in crate::scim::user::NAME_PARTS {
            sub(find(&user, "name"), scim);
        }
        let ids: Vec<Value> = all().iter().map(|s| s["id"].clone()).collect();
        for urn in crate::scim::user::USER_SCHEMAS {
            assert!(ids.contains(&json!(urn)), "{urn} has no schema document");
        }
    }
}
