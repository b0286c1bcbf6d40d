//! The wire contract of Roster: package `roster.v1`.
//!
//! Everything here is generated from `roster/v1/roster.proto`; see that file for the semantics of
//! each message and RPC.

/// Generated types and clients/servers of `roster.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("roster.v1");
}

/// The encoded `FileDescriptorSet` of `roster.v1` (and the well-known types it imports), for
/// gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/roster_descriptor.bin"));

/// The largest `page_size` of a list request (larger ones are clamped): the SCIM facade's
/// default `maxResults` too.
pub const MAX_PAGE_SIZE: i32 = 1000;

/// The `page_size` of a list request that names none.
pub const DEFAULT_PAGE_SIZE: i32 = 100;

/// The value rules every write of a User or Group obeys, wherever it comes from: the SCIM
/// facade checks them early (to name the attribute in its 400), and the service enforces them
/// on every write path (so gRPC callers meet the same ones).
///
/// Lengths are counted in Unicode scalar values (characters), not bytes.
///
/// Control characters: no string may hold a C0 control character (U+0000 to U+001F) other
/// than tab, line feed and carriage return, and a name or identifier (see [`single_line`])
/// may hold none of those three either. NUL in particular cannot be stored by PostgreSQL at
/// all, and one stored inside a JSON document breaks PostgreSQL's JSON functions for the whole
/// tenant. Free text (`name.formatted`, `addresses.formatted`, a custom attribute...) keeps its
/// line breaks and tabs.
pub mod limits {
    /// Any string attribute, in characters (custom and extension attributes too, at any depth,
    /// and the keys of their JSON objects).
    pub const MAX_STRING_CHARS: usize = 1024;
    /// A User's `userName`: sign-in names and e-mail addresses are far shorter.
    pub const MAX_USER_NAME_CHARS: usize = 256;
    /// A Group's `displayName`.
    pub const MAX_GROUP_NAME_CHARS: usize = 256;
    /// `emails.value`: the longest address SMTP can carry (RFC 5321 §4.5.3.1.3, less the
    /// brackets).
    pub const MAX_EMAIL_CHARS: usize = 254;
    /// Most e-mail addresses one User may have.
    pub const MAX_EMAILS: usize = 32;
    /// The largest document of a User's other attributes (custom and extension attributes,
    /// phone numbers, addresses, ...) as JSON text, in bytes.
    pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;
    /// Members one request may name (a group's create, replace or membership change).
    pub const MAX_MEMBERS_PER_REQUEST: usize = 100_000;

    /// The resource a value belongs to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Resource {
        User,
        Group,
    }

    /// The length limit of the string at `path` (SCIM attribute names joined with dots, e.g.
    /// `emails.value`; compared without letter case), in characters.
    pub fn max_chars(resource: Resource, path: &str) -> usize {
        let is = |p: &str| path.eq_ignore_ascii_case(p);
        match resource {
            Resource::User if is("userName") => MAX_USER_NAME_CHARS,
            Resource::User if is("emails.value") => MAX_EMAIL_CHARS,
            Resource::Group if is("displayName") => MAX_GROUP_NAME_CHARS,
            _ => MAX_STRING_CHARS,
        }
    }

    /// Whether the string at `path` is a name or an identifier, where even tab and line breaks
    /// are refused: a User's `userName`, `externalId`, `emails.value` and `role`; a Group's
    /// `displayName`, `externalId` and `members.value`.
    pub fn single_line(resource: Resource, path: &str) -> bool {
        let is = |p: &str| path.eq_ignore_ascii_case(p);
        match resource {
            Resource::User => {
                is("userName") || is("externalId") || is("emails.value") || is("role")
            }
            Resource::Group => is("displayName") || is("externalId") || is("members.value"),
        }
    }

    /// The first control character `value` may not hold, if any (see the module
    /// documentation); `single_line` refuses tab and line breaks too.
    pub fn forbidden_control(value: &str, single_line: bool) -> Option<char> {
        value.chars().find(|&c| {
            c.is_ascii_control()
                && c != '\u{7f}'
                && (single_line || !matches!(c, '\t' | '\n' | '\r'))
        })
    }

    /// Why the string at `path` breaks a rule (too long, or a forbidden control character),
    /// or `None` when it keeps them all.
    pub fn check(resource: Resource, path: &str, value: &str) -> Option<String> {
        check_with(
            value,
            path,
            max_chars(resource, path),
            single_line(resource, path),
        )
    }

    /// [`check`] with an explicit limit and line rule.
    pub fn check_with(value: &str, path: &str, max: usize, single_line: bool) -> Option<String> {
        if let Some(c) = forbidden_control(value, single_line) {
            return Some(format!(
                "'{path}' holds the control character U+{:04X}, which is not allowed",
                u32::from(c)
            ));
        }
        // Cheap first: a string of at most `max` bytes has at most `max` characters.
        if value.len() > max && value.chars().count() > max {
            return Some(format!("'{path}' is longer than {max} characters"));
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn control_characters() {
            assert_eq!(forbidden_control("ada", true), None);
            assert_eq!(forbidden_control("a\0da", false), Some('\0'));
            assert_eq!(forbidden_control("a\u{1b}", false), Some('\u{1b}'));
            assert_eq!(forbidden_control("line\r\n\tnext", false), None);
            assert_eq!(forbidden_control("a\nb", true), Some('\n'));
            assert_eq!(forbidden_control("a\u{7f}é\u{85}", true), None);
        }

        #[test]
        fn limits_by_path() {
            assert_eq!(max_chars(Resource::User, "userName"), 256);
            assert_eq!(max_chars(Resource::User, "username"), 256);
            assert_eq!(max_chars(Resource::User, "emails.value"), 254);
            assert_eq!(max_chars(Resource::User, "title"), 1024);
            assert_eq!(max_chars(Resource::Group, "displayName"), 256);
            assert_eq!(max_chars(Resource::User, "displayName"), 1024);
            assert!(check(Resource::User, "userName", &"é".repeat(256)).is_none());
            assert!(check(Resource::User, "userName", &"é".repeat(257)).is_some());
            assert!(check(Resource::Group, "externalId", "a\tb").is_some());
            assert!(check(Resource::User, "addresses.formatted", "a\nb").is_none());
        }
    }
}
