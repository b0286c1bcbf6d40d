//! Users: their attributes, validation, and field-mask updates.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    ADMIN_ROLE, DomainError, EffectiveRole, MAX_STRING_LEN, MappedRole, ScimType, effective_role,
};

/// Longest accepted `attributes_json` document.
pub const MAX_ATTRIBUTES_LEN: usize = 64 * 1024;
/// Most e-mail addresses one user may have.
pub const MAX_EMAILS: usize = 32;

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

fn check_len(field: &str, value: &Option<String>) -> Result<(), DomainError> {
    match value {
        Some(v) if v.len() > MAX_STRING_LEN => Err(DomainError::invalid(
            ScimType::InvalidValue,
            format!("{field} is longer than {MAX_STRING_LEN} bytes"),
        )),
        _ => Ok(()),
    }
}

impl UserInput {
    /// Checks everything that does not need the store: required values, lengths, the role,
    /// the e-mail list and the extra attributes document.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.user_name.trim().is_empty() {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                "userName is required",
            ));
        }
        check_len("userName", &Some(self.user_name.clone()))?;
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
        ] {
            check_len(field, value)?;
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
            check_len("emails.value", &Some(email.value.clone()))?;
            check_len("emails.type", &email.kind)?;
            check_len("emails.display", &email.display)?;
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
        if self.attributes.len() > MAX_ATTRIBUTES_LEN {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                "the extra attributes are larger than 64 KiB",
            ));
        }
        match serde_json::from_str::<serde_json::Value>(&self.attributes) {
            Ok(serde_json::Value::Object(_)) => Ok(()),
            _ => Err(DomainError::invalid(
                ScimType::InvalidValue,
                "attributes_json must be a JSON object",
            )),
        }
    }

    /// The lower-cased e-mail values, without repeats, for the lookup index.
    pub fn email_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.emails.iter().map(|e| e.value.to_lowercase()).collect();
        keys.sort();
        keys.dedup();
        keys
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
