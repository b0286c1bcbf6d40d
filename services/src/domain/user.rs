//! Users: their attributes, validation, and field-mask updates.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use roster_proto::limits::{self, MAX_ATTRIBUTES_BYTES, MAX_EMAILS, MAX_STRING_CHARS, Resource};

use super::{
    ADMIN_ROLE, DomainError, EffectiveRole, MappedRole, ScimType, check_opt_text, check_text,
    effective_role, name_key,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonName {
    pub formatted: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub honorific_prefix: Option<String>,
    pub honorific_suffix: Option<String>,
}

impl PersonName {
    pub fn is_empty(&self) -> bool {
        *self == PersonName::default()
    }
}

/// One e-mail address, kept as written (its letter case too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub value: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// A group a user belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub display_name: String,
    /// The role the group is mapped to, if any.
    pub mapped_role: Option<MappedRole>,
}

/// The writable attributes of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInput {
    pub user_name: String,
    pub external_id: Option<String>,
    pub name: PersonName,
    pub display_name: Option<String>,
    pub nick_name: Option<String>,
    pub profile_url: Option<String>,
    pub title: Option<String>,
    pub user_type: Option<String>,
    pub preferred_language: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    /// `false` when unassigned (`active` was removed): then `active` is `false` too.
    pub active: bool,
    /// Whether `active` has a value (RFC 7644 §3.5.2.2: a removed attribute is unassigned).
    pub active_assigned: bool,
    pub emails: Vec<Email>,
    pub role: Option<String>,
    /// Every other SCIM attribute, as a JSON object.
    pub attributes: String,
}

impl Default for UserInput {
    fn default() -> Self {
        UserInput {
            user_name: String::new(),
            external_id: None,
            name: PersonName::default(),
            display_name: None,
            nick_name: None,
            profile_url: None,
            title: None,
            user_type: None,
            preferred_language: None,
            locale: None,
            timezone: None,
            active: true,
            active_assigned: true,
            emails: Vec::new(),
            role: None,
            attributes: "{}".to_owned(),
        }
    }
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub attrs: UserInput,
    pub groups: Vec<GroupRef>,
    pub version: i64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

impl User {
    /// The role in force: the user's own, else its best mapped group's, else the tenant's
    /// `default_role`.
    pub fn effective_role(&self, default_role: &str) -> EffectiveRole {
        effective_role(
            self.attrs.role.as_deref(),
            self.groups
                .iter()
                .filter_map(|g| g.mapped_role.as_ref().map(|m| (g.id.as_str(), m))),
            default_role,
        )
    }

    /// Whether the user's admin tokens grant admin: it is active and its effective role is
    /// admin.
    pub fn acts_as_admin(&self, default_role: &str) -> bool {
        self.attrs.active && self.effective_role(default_role).role == ADMIN_ROLE
    }
}

impl UserInput {
    /// Checks everything that does not need the store: required values, the shared
    /// [`limits`] (lengths and control characters) of every string, the extra attributes
    /// document's included, the role, and the e-mail list.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.user_name.trim().is_empty() {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                "userName is required",
            ));
        }
        check_text(Resource::User, "userName", &self.user_name)?;
        for (field, value) in [
            ("externalId", &self.external_id),
            ("name.formatted", &self.name.formatted),
            ("name.familyName", &self.name.family_name),
            ("name.givenName", &self.name.given_name),
            ("name.middleName", &self.name.middle_name),
            ("name.honorificPrefix", &self.name.honorific_prefix),
            ("name.honorificSuffix", &self.name.honorific_suffix),
            ("displayName", &self.display_name),
            ("nickName", &self.nick_name),
            ("profileUrl", &self.profile_url),
            ("title", &self.title),
            ("userType", &self.user_type),
            ("preferredLanguage", &self.preferred_language),
            ("locale", &self.locale),
            ("timezone", &self.timezone),
            ("role", &self.role),
        ] {
            check_opt_text(Resource::User, field, value.as_deref())?;
        }
        if self.emails.len() > MAX_EMAILS {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                format!("a user has at most {MAX_EMAILS} emails"),
            ));
        }
        let mut primaries = 0;
        for email in &self.emails {
            if email.value.trim().is_empty() {
                return Err(DomainError::invalid(
                    ScimType::InvalidValue,
                    "emails.value is required",
                ));
            }
            check_text(Resource::User, "emails.value", &email.value)?;
            check_opt_text(Resource::User, "emails.type", email.kind.as_deref())?;
            check_opt_text(Resource::User, "emails.display", email.display.as_deref())?;
            if email.primary == Some(true) {
                primaries += 1;
            }
        }
        if primaries > 1 {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                "at most one of emails may be primary",
            ));
        }
        if self.attributes.len() > MAX_ATTRIBUTES_BYTES {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                format!(
                    "the extra attributes are larger than {} KiB",
                    MAX_ATTRIBUTES_BYTES / 1024
                ),
            ));
        }
        match serde_json::from_str::<serde_json::Value>(&self.attributes) {
            Ok(serde_json::Value::Object(map)) => check_json_object(&map, ""),
            _ => Err(DomainError::invalid(
                ScimType::InvalidValue,
                "attributes_json must be a JSON object",
            )),
        }
    }

    /// The e-mail values' lookup keys ([`name_key`]), without repeats, for the lookup index.
    pub fn email_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.emails.iter().map(|e| name_key(&e.value)).collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Every key and every string of a JSON object of extra attributes, at any depth, against
/// the shared limits of any string (line breaks and tabs allowed: free text).
fn check_json_object(
    map: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
) -> Result<(), DomainError> {
    for (key, value) in map {
        // A key holding a control character is named with it escaped.
        let path = format!("{prefix}{}", key.escape_debug());
        check_json_text(key, &path)?;
        check_json_value(value, &path)?;
    }
    Ok(())
}

fn check_json_value(value: &serde_json::Value, path: &str) -> Result<(), DomainError> {
    match value {
        serde_json::Value::String(s) => check_json_text(s, path),
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| check_json_value(v, path)),
        serde_json::Value::Object(map) => check_json_object(map, &format!("{path}.")),
        _ => Ok(()),
    }
}

fn check_json_text(text: &str, path: &str) -> Result<(), DomainError> {
    match limits::check_with(text, path, MAX_STRING_CHARS, false) {
        Some(why) => Err(DomainError::invalid(ScimType::InvalidValue, why)),
        None => Ok(()),
    }
}

/// A path of an update mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    UserName,
    ExternalId,
    Name,
    NameFormatted,
    NameFamilyName,
    NameGivenName,
    NameMiddleName,
    NameHonorificPrefix,
    NameHonorificSuffix,
    DisplayName,
    NickName,
    ProfileUrl,
    Title,
    UserType,
    PreferredLanguage,
    Locale,
    Timezone,
    Active,
    Emails,
    Role,
    Attributes,
    Password,
}

impl UserField {
    /// Every writable attribute: what the mask `*` names. (The password is set by `*` only when
    /// one is given: a full replace never clears it, since it is never read back.)
    pub const ALL: [UserField; 15] = [
        UserField::UserName,
        UserField::ExternalId,
        UserField::Name,
        UserField::DisplayName,
        UserField::NickName,
        UserField::ProfileUrl,
        UserField::Title,
        UserField::UserType,
        UserField::PreferredLanguage,
        UserField::Locale,
        UserField::Timezone,
        UserField::Active,
        UserField::Emails,
        UserField::Role,
        UserField::Attributes,
    ];

    /// Parses one mask path, in proto (`name.given_name`) or JSON (`name.givenName`) spelling.
    pub fn parse(path: &str) -> Option<UserField> {
        let snake = to_snake(path);
        Some(match snake.as_str() {
            "user_name" => UserField::UserName,
            "external_id" => UserField::ExternalId,
            "name" => UserField::Name,
            "name.formatted" => UserField::NameFormatted,
            "name.family_name" => UserField::NameFamilyName,
            "name.given_name" => UserField::NameGivenName,
            "name.middle_name" => UserField::NameMiddleName,
            "name.honorific_prefix" => UserField::NameHonorificPrefix,
            "name.honorific_suffix" => UserField::NameHonorificSuffix,
            "display_name" => UserField::DisplayName,
            "nick_name" => UserField::NickName,
            "profile_url" => UserField::ProfileUrl,
            "title" => UserField::Title,
            "user_type" => UserField::UserType,
            "preferred_language" => UserField::PreferredLanguage,
            "locale" => UserField::Locale,
            "timezone" => UserField::Timezone,
            "active" => UserField::Active,
            "emails" => UserField::Emails,
            "role" => UserField::Role,
            "attributes_json" => UserField::Attributes,
            "password" => UserField::Password,
            _ => return None,
        })
    }

    /// Parses a whole mask; `*` alone means every writable field.
    pub fn parse_mask(paths: &[String]) -> Result<Vec<UserField>, DomainError> {
        if paths.is_empty() {
            return Err(DomainError::invalid(
                ScimType::InvalidPath,
                "update_mask names no field",
            ));
        }
        if paths.len() == 1 && paths[0] == "*" {
            return Ok(UserField::ALL.to_vec());
        }
        paths
            .iter()
            .map(|p| {
                UserField::parse(p).ok_or_else(|| {
                    DomainError::invalid(
                        ScimType::InvalidPath,
                        format!("{p:?} is not a writable field of User"),
                    )
                })
            })
            .collect()
    }

    /// Copies this field from `from` into `into` (the password is not an attribute: callers
    /// handle it on its own).
    pub fn copy(self, into: &mut UserInput, from: &UserInput) {
        match self {
            UserField::UserName => into.user_name.clone_from(&from.user_name),
            UserField::ExternalId => into.external_id.clone_from(&from.external_id),
            UserField::Name => into.name.clone_from(&from.name),
            UserField::NameFormatted => into.name.formatted.clone_from(&from.name.formatted),
            UserField::NameFamilyName => into.name.family_name.clone_from(&from.name.family_name),
            UserField::NameGivenName => into.name.given_name.clone_from(&from.name.given_name),
            UserField::NameMiddleName => into.name.middle_name.clone_from(&from.name.middle_name),
            UserField::NameHonorificPrefix => into
                .name
                .honorific_prefix
                .clone_from(&from.name.honorific_prefix),
            UserField::NameHonorificSuffix => into
                .name
                .honorific_suffix
                .clone_from(&from.name.honorific_suffix),
            UserField::DisplayName => into.display_name.clone_from(&from.display_name),
            UserField::NickName => into.nick_name.clone_from(&from.nick_name),
            UserField::ProfileUrl => into.profile_url.clone_from(&from.profile_url),
            UserField::Title => into.title.clone_from(&from.title),
            UserField::UserType => into.user_type.clone_from(&from.user_type),
            UserField::PreferredLanguage => {
                into.preferred_language.clone_from(&from.preferred_language)
            }
            UserField::Locale => into.locale.clone_from(&from.locale),
            UserField::Timezone => into.timezone.clone_from(&from.timezone),
            UserField::Active => {
                // An unassigned status denies like a deactivated one.
                into.active_assigned = from.active_assigned;
                into.active = from.active && from.active_assigned;
            }
            UserField::Emails => into.emails.clone_from(&from.emails),
            UserField::Role => into.role.clone_from(&from.role),
            UserField::Attributes => into.attributes.clone_from(&from.attributes),
            UserField::Password => {}
        }
    }
}

/// `givenName` → `given_name`; already-snake paths pass through.
fn to_snake(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_paths_parse_in_both_spellings() {
        assert_eq!(
            UserField::parse("name.givenName"),
            Some(UserField::NameGivenName)
        );
        assert_eq!(
            UserField::parse("name.given_name"),
            Some(UserField::NameGivenName)
        );
        assert_eq!(
            UserField::parse("attributesJson"),
            Some(UserField::Attributes)
        );
        assert_eq!(UserField::parse("id"), None);
        assert!(UserField::parse_mask(&[]).is_err());
        assert_eq!(
            UserField::parse_mask(&["*".to_owned()])
                .map(|m| m.len())
                .ok(),
            Some(UserField::ALL.len())
        );
    }

    #[test]
    fn validation_rejects_bad_input() {
        let ok = UserInput {
            user_name: "ada".into(),
            ..UserInput::default()
        };
        assert!(ok.validate().is_ok());
        let cases = [
            UserInput {
                user_name: " ".into(),
                ..ok.clone()
            },
            UserInput {
                attributes: "[1]".into(),
                ..ok.clone()
            },
            UserInput {
                user_name: "x".repeat(257),
                ..ok.clone()
            },
            UserInput {
                user_name: "a\0".into(),
                ..ok.clone()
            },
            UserInput {
                user_name: "a\nb".into(),
                ..ok.clone()
            },
            UserInput {
                title: Some("x".repeat(1025)),
                ..ok.clone()
            },
            UserInput {
                role: Some("admin\0".into()),
                ..ok.clone()
            },
            UserInput {
                attributes: r#"{"phoneNumbers":[{"value":"555\u0000"}]}"#.into(),
                ..ok.clone()
            },
            UserInput {
                attributes: r#"{"ke\u0000y":1}"#.into(),
                ..ok.clone()
            },
            UserInput {
                attributes: format!(r#"{{"custom":{{"deep":["{}"]}}}}"#, "x".repeat(1025)),
                ..ok.clone()
            },
            UserInput {
                emails: vec![Email {
                    value: "a@x".into(),
                    kind: None,
                    primary: None,
                    display: Some("A\0".into()),
                }],
                ..ok.clone()
            },
            UserInput {
                emails: vec![
                    Email {
                        value: "a@x".into(),
                        kind: None,
                        primary: Some(true),
                        display: None,
                    },
                    Email {
                        value: "b@x".into(),
                        kind: None,
                        primary: Some(true),
                        display: None,
                    },
                ],
                ..ok.clone()
            },
        ];
        for case in cases {
            assert!(
                matches!(case.validate(), Err(DomainError::Invalid { .. })),
                "{case:?}"
            );
        }
    }

    #[test]
    fn free_text_keeps_line_breaks() {
        let ok = UserInput {
            user_name: "ada".into(),
            name: PersonName {
                formatted: Some("Ada\r\nLovelace".into()),
                ..PersonName::default()
            },
            attributes: r#"{"addresses":[{"formatted":"1 Main St\nSpringfield\t"}]}"#.into(),
            ..UserInput::default()
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn email_keys_are_lowercased_and_unique() {
        let u = UserInput {
            user_name: "ada".into(),
            emails: ["Ada@X.org", "ada@x.org", "b@y"]
                .iter()
                .map(|v| Email {
                    value: (*v).into(),
                    kind: None,
                    primary: None,
                    display: None,
                })
                .collect(),
            ..UserInput::default()
        };
        assert_eq!(
            u.email_keys(),
            vec!["ada@x.org".to_owned(), "b@y".to_owned()]
        );
    }
}
