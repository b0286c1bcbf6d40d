//! Listing: what a list is sorted by (RFC 7644 §3.4.2.3), where a page starts, and what a page
//! holds.

use time::PrimitiveDateTime;

use super::{DomainError, ScimType};

/// An attribute a list can be sorted by. Every sort breaks ties by `id`, so that the order is
/// total and keyset paging neither skips nor repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortAttr {
    /// Creation order (ids are UUIDv7): the order when no sort is asked for.
    Id,
    /// Users: through the stored lower-case key (indexed).
    UserName,
    FamilyName,
    GivenName,
    /// Users: `displayName` without letter case; groups: through the stored lower-case key
    /// (indexed).
    DisplayName,
    /// Case-exact (indexed).
    ExternalId,
    Title,
    Active,
    /// `meta.created` (indexed).
    Created,
    /// `meta.lastModified` (indexed for users).
    Modified,
}

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:user:";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:group:";

/// The attributes users sort by, as SCIM names them.
pub const USER_SORTS: &[(&str, SortAttr)] = &[
    ("id", SortAttr::Id),
    ("userName", SortAttr::UserName),
    ("name.familyName", SortAttr::FamilyName),
    ("name.givenName", SortAttr::GivenName),
    ("displayName", SortAttr::DisplayName),
    ("externalId", SortAttr::ExternalId),
    ("title", SortAttr::Title),
    ("active", SortAttr::Active),
    ("meta.created", SortAttr::Created),
    ("meta.lastModified", SortAttr::Modified),
];

/// The attributes groups sort by.
pub const GROUP_SORTS: &[(&str, SortAttr)] = &[
    ("id", SortAttr::Id),
    ("displayName", SortAttr::DisplayName),
    ("externalId", SortAttr::ExternalId),
    ("meta.created", SortAttr::Created),
    ("meta.lastModified", SortAttr::Modified),
];

impl SortAttr {
    /// Whether the attribute may be absent (absent values sort last ascending, first
    /// descending: RFC 7644 §3.4.2.3).
    pub fn nullable(self) -> bool {
        matches!(
            self,
            SortAttr::FamilyName
                | SortAttr::GivenName
                | SortAttr::DisplayName
                | SortAttr::ExternalId
                | SortAttr::Title
        )
    }
}

/// A sort: an attribute and a direction. Descending is the exact reverse of ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sort {
    pub attr: SortAttr,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            attr: SortAttr::Id,
            descending: false,
        }
    }
}

impl Sort {
    /// Parses `sort_by` (a SCIM attribute path, letter case ignored, optionally prefixed by the
    /// resource's core schema URN) against `allowed`. Empty: creation order, and `descending`
    /// is ignored. Returns the sort and the attribute's canonical name.
    pub fn parse(
        sort_by: &str,
        descending: bool,
        allowed: &[(&'static str, SortAttr)],
    ) -> Result<(Sort, &'static str), DomainError> {
        let raw = sort_by.trim();
        if raw.is_empty() {
            return Ok((Sort::default(), ""));
        }
        let lower = raw.to_ascii_lowercase();
        let name = [USER_URN, GROUP_URN]
            .iter()
            .find_map(|urn| lower.strip_prefix(urn))
            .unwrap_or(&lower);
        allowed
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, attr)| {
                (
                    Sort {
                        attr: *attr,
                        descending,
                    },
                    *n,
                )
            })
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                DomainError::invalid(
                    ScimType::InvalidValue,
                    format!(
                        "cannot sort by {raw:?}: sortBy is one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// The value of a sort key for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    /// The resource lacks the attribute (or the sort is by `id` alone).
    Null,
    Text(String),
    Bool(bool),
    Time(PrimitiveDateTime),
}

/// A place in a sorted list: the sort key and id of one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub key: SortValue,
    pub id: String,
}

/// A page request: after (or before) a position, or after skipping `skip` matches.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub size: i64,
    pub sort: Sort,
    /// Continue from here (exclusive), forward, or backward when `backward`.
    pub cursor: Option<Position>,
    pub backward: bool,
    /// Matches to skip first (index paging); ignored with a cursor.
    pub skip: i64,
    /// Count the matches, read none.
    pub total_only: bool,
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts, when more follow.
    pub next: Option<Position>,
    /// Where the page before this one ends (reading backward), when one may precede it.
    pub previous: Option<Position>,
    /// The position of the last item.
    pub end: Option<Position>,
    pub total: i64,
}

impl<T> Page<T> {
    pub fn total_only(total: i64) -> Page<T> {
        Page {
            items: Vec::new(),
            next: None,
            previous: None,
            end: None,
            total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_ignore_case_and_the_core_urn() {
        let (s, n) = Sort::parse("NAME.familyname", true, USER_SORTS).unwrap();
        assert_eq!(
            (s.attr, s.descending, n),
            (SortAttr::FamilyName, true, "name.familyName")
        );
        let (s, _) = Sort::parse(
            "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            false,
            USER_SORTS,
        )
        .unwrap();
        assert_eq!(s.attr, SortAttr::UserName);
        let (s, n) = Sort::parse(" ", true, USER_SORTS).unwrap();
        assert_eq!((s, n), (Sort::default(), ""));
        assert!(Sort::parse("userName", false, GROUP_SORTS).is_err());
        assert!(Sort::parse("emails", false, USER_SORTS).is_err());
    }
}
