//! Index paging (`startIndex`) served by keyset queries.
//!
//! SCIM clients page with `startIndex` (Okta's import asks for 1, 101, 201, …). Served with
//! `OFFSET`, page k costs k pages of index scan, so the last page of a 100 000-user import is
//! hundreds of times slower than the first. Instead, each replica remembers where a page ended:
//! "in tenant T with filter F, position s+n comes after id L". The next request for position
//! s+n continues with `id > L`, and every page costs the same. A position nobody reached by
//! paging (or one this replica has not seen) falls back to `OFFSET`.
//!
//! The continuation keeps a paging client consistent while the directory changes (no user is
//! skipped or repeated when one before the page is deleted), which RFC 7644 §3.4.2.4 leaves to
//! the server. The total that comes with it is recounted once it is older than a second.
//!
//! A continuation is a [`Position`] in the list's sort (sort key and id), and the sort is part
//! of the hint's key, so sorted `startIndex` paging is served by keyset queries too: OFFSET is
//! only the fallback for a position nobody reached by paging.
//!
//! The keyset predicates themselves ([`keyset`]) are shared with cursor paging (page tokens,
//! SCIM `cursor`): "after" and "before" a position in the ascending order, where absent values
//! sort last (RFC 7644 §3.4.2.3) and ties are broken by id. A descending list is the exact
//! reverse, so reading it forward is reading the ascending order backward.
//!
//! The hints are bounded in number ([`MAX_HINTS`]) and in bytes ([`MAX_HINT_BYTES`]): a hint
//! is kept under the SHA-256 of its filter, not the filter's text (up to 8 KiB), and when
//! either bound is reached the expired hints go, then the least recently used.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::domain::{Position, SortValue};

/// How long a continuation is kept after its last use.
const HINT_TTL: Duration = Duration::from_secs(300);
/// How long a total is reused before it is counted again.
const TOTAL_TTL: Duration = Duration::from_secs(1);
/// Most hints kept.
pub const MAX_HINTS: usize = 10_000;
/// Most bytes the hints take, counted as [`Stored::bytes`] does.
pub const MAX_HINT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HintKey {
    pub tenant_id: String,
    pub resource: &'static str,
    /// The filter and the sort (a page of one sort says nothing of another).
    pub filter: String,
    /// 0-based position of the page's first item.
    pub position: i64,
}

/// A [`HintKey`] as kept: the filter by its digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StoredKey {
    tenant_id: String,
    resource: &'static str,
    filter: [u8; 32],
    position: i64,
}

impl StoredKey {
    fn new(key: &HintKey) -> Self {
        StoredKey {
            tenant_id: key.tenant_id.clone(),
            resource: key.resource,
            filter: Sha256::digest(key.filter.as_bytes()).into(),
            position: key.position,
        }
    }
}

#[derive(Debug, Clone)]
struct Hint {
    after: Position,
    total: i64,
    counted: Instant,
    used: Instant,
}

/// The bytes one hint takes: its key and value, and the strings they own.
fn bytes(key: &StoredKey, hint: &Hint) -> usize {
    let text = match &hint.after.key {
        SortValue::Text(t) => t.len(),
        SortValue::Null | SortValue::Bool(_) | SortValue::Time(_) => 0,
    };
    std::mem::size_of::<StoredKey>()
        + std::mem::size_of::<Hint>()
        + key.tenant_id.len()
        + hint.after.id.len()
        + text
}

#[derive(Debug, Default)]
struct Stored {
    hints: HashMap<StoredKey, Hint>,
    /// The sum of [`bytes`] over `hints`.
    bytes: usize,
}

impl Stored {
    fn remove(&mut self, key: &StoredKey) {
        if let Some(old) = self.hints.remove(key) {
            self.bytes = self.bytes.saturating_sub(bytes(key, &old));
        }
    }

    /// Makes room for a hint of `incoming` bytes: drops the expired hints, then the least
    /// recently used, down to three quarters of each bound (so that this runs seldom).
    fn make_room(&mut self, incoming: usize) {
        if self.hints.len() < MAX_HINTS && self.bytes + incoming <= MAX_HINT_BYTES {
            return;
        }
        let expired: Vec<StoredKey> = self
            .hints
            .iter()
            .filter(|(_, h)| h.used.elapsed() > HINT_TTL)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.remove(k);
        }
        let (max_len, max_bytes) = (MAX_HINTS / 4 * 3, MAX_HINT_BYTES / 4 * 3);
        if self.hints.len() <= max_len && self.bytes + incoming <= max_bytes {
            return;
        }
        let mut by_use: Vec<(Instant, StoredKey)> = self
            .hints
            .iter()
            .map(|(k, h)| (h.used, k.clone()))
            .collect();
        by_use.sort_unstable_by_key(|(used, _)| *used);
        for (_, k) in by_use {
            if self.hints.len() <= max_len && self.bytes + incoming <= max_bytes {
                break;
            }
            self.remove(&k);
        }
    }
}

/// Where to continue a page, and the total if it is fresh enough to reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    pub after: Position,
    /// The total and when it was counted, while that was less than a second ago.
    pub total: Option<(i64, Instant)>,
}

#[derive(Debug, Default)]
pub struct PageHints {
    stored: Mutex<Stored>,
}

impl PageHints {
    /// The continuation for `key`, if a page ended exactly there.
    pub fn get(&self, key: &HintKey) -> Option<Continuation> {
        let mut stored = self.stored.lock().ok()?;
        let hint = stored.hints.get_mut(&StoredKey::new(key))?;
        if hint.used.elapsed() > HINT_TTL {
            return None;
        }
        hint.used = Instant::now();
        Some(Continuation {
            after: hint.after.clone(),
            total: (hint.counted.elapsed() < TOTAL_TTL).then_some((hint.total, hint.counted)),
        })
    }

    /// Records that the page at `key` held `items` items, the last at `last`.
    /// `counted` is when `total` was counted.
    pub fn record(
        &self,
        key: HintKey,
        items: usize,
        last: &Position,
        total: i64,
        counted: Instant,
    ) {
        let Ok(mut stored) = self.stored.lock() else {
            return;
        };
        let mut next = StoredKey::new(&key);
        next.position = key
            .position
            .saturating_add(i64::try_from(items).unwrap_or(i64::MAX));
        let hint = Hint {
            after: last.clone(),
            total,
            counted,
            used: Instant::now(),
        };
        let size = bytes(&next, &hint);
        stored.remove(&next);
        stored.make_room(size);
        stored.bytes += size;
        stored.hints.insert(next, hint);
    }

    /// How many hints are kept, and the bytes they take.
    pub fn size(&self) -> (usize, usize) {
        self.stored
            .lock()
            .map(|s| (s.hints.len(), s.bytes))
            .unwrap_or_default()
    }
}

/// Keyset predicates and orders over a sort key, for `users` and `groups` alike.
pub mod keyset {
    diesel::postfix_operator!(
        NullsLast,
        " NULLS LAST",
        diesel::expression::expression_types::NotSelectable
    );
    diesel::postfix_operator!(
        NullsFirst,
        " NULLS FIRST",
        diesel::expression::expression_types::NotSelectable
    );

    /// Rows strictly after (`after: true`) or before `(value, id)` in the ascending order of
    /// `$key` (NOT NULL), ties broken by `$id`. The redundant `>=`/`<=` bound lets the database
    /// start from the position in an index on (tenant, key, id).
    macro_rules! bound {
        ($key:expr, $id:expr, $value:expr, $last:expr, $after:expr) => {{
            let (v, i) = ($value, $last);
            let e: Box<
                dyn diesel::expression::BoxableExpression<
                        _,
                        $crate::storage::MultiBackend,
                        SqlType = diesel::sql_types::Bool,
                    >,
            > = if $after {
                Box::new($key.ge(v.clone()).and($key.gt(v).or($id.gt(i))))
            } else {
                Box::new($key.le(v.clone()).and($key.lt(v).or($id.lt(i))))
            };
            e
        }};
    }
    pub(crate) use bound;

    /// The same for a nullable `$key`, whose absent values sort after every present one;
    /// `$value` is `None` for a position on an absent value.
    macro_rules! nullable_bound {
        ($key:expr, $id:expr, $value:expr, $last:expr, $after:expr) => {{
            let (value, i) = ($value, $last);
            let e: Box<
                dyn diesel::expression::BoxableExpression<
                        _,
                        $crate::storage::MultiBackend,
                        SqlType = diesel::sql_types::Bool,
                    >,
            > = match (value, $after) {
                (Some(v), true) => Box::new(
                    $key.is_null()
                        .or($key.assume_not_null().gt(v.clone()))
                        .or($key.assume_not_null().eq(v).and($id.gt(i))),
                ),
                (None, true) => Box::new($key.is_null().and($id.gt(i))),
                (Some(v), false) => Box::new(
                    $key.is_not_null().and(
                        $key.assume_not_null()
                            .lt(v.clone())
                            .or($key.assume_not_null().eq(v).and($id.lt(i))),
                    ),
                ),
                (None, false) => Box::new($key.is_not_null().or($id.lt(i))),
            };
            e
        }};
    }
    pub(crate) use nullable_bound;

    /// Orders a boxed query by `$key` then `$id`, ascending (absent values last) or
    /// descending (absent values first).
    macro_rules! order {
        ($query:expr, $key:expr, $id:expr, $ascending:expr, nullable) => {
            if $ascending {
                $query.order((
                    $crate::storage::paging::keyset::NullsLast::new($key.asc()),
                    $id.asc(),
                ))
            } else {
                $query.order((
                    $crate::storage::paging::keyset::NullsFirst::new($key.desc()),
                    $id.desc(),
                ))
            }
        };
        ($query:expr, $key:expr, $id:expr, $ascending:expr) => {
            if $ascending {
                $query.order(($key.asc(), $id.asc()))
            } else {
                $query.order(($key.desc(), $id.desc()))
            }
        };
    }
    pub(crate) use order;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SortValue;

    fn at(id: &str) -> Position {
        Position {
            key: SortValue::Null,
            id: id.into(),
        }
    }

    fn key(position: i64) -> HintKey {
        HintKey {
            tenant_id: "t".into(),
            resource: "users",
            filter: String::new(),
            position,
        }
    }

    #[test]
    fn a_page_leaves_a_continuation_for_the_next() {
        let hints = PageHints::default();
        assert_eq!(hints.get(&key(100)), None);
        hints.record(key(0), 100, &at("id-100"), 250, Instant::now());
        let c = hints.get(&key(100));
        assert_eq!(c.as_ref().map(|c| c.after.id.as_str()), Some("id-100"));
        assert_eq!(c.and_then(|c| c.total).map(|t| t.0), Some(250));
        assert_eq!(hints.get(&key(99)), None);
        let other_tenant = HintKey {
            tenant_id: "u".into(),
            ..key(100)
        };
        assert_eq!(hints.get(&other_tenant), None);
    }

    #[test]
    fn many_distinct_filters_stay_within_the_bounds() {
        let hints = PageHints::default();
        // Filters of 8 KiB each (the longest accepted), more than the hints may hold: kept by
        // their digest, the text costs nothing; past the count the oldest go.
        let long = "x".repeat(8 * 1024);
        for n in 0..(MAX_HINTS + 2_500) {
            let key = HintKey {
                filter: format!("{long}{n}"),
                ..key(0)
            };
            hints.record(key, 100, &at(&format!("id-{n}")), 1_000, Instant::now());
            let (len, bytes) = hints.size();
            assert!(len <= MAX_HINTS, "{len} hints after {n}");
            assert!(bytes <= MAX_HINT_BYTES, "{bytes} bytes after {n}");
        }
        // The newest are still there, the oldest evicted.
        let newest = HintKey {
            filter: format!("{long}{}", MAX_HINTS + 2_499),
            ..key(100)
        };
        assert!(hints.get(&newest).is_some());
        let oldest = HintKey {
            filter: format!("{long}0"),
            ..key(100)
        };
        assert_eq!(hints.get(&oldest), None);
    }

    #[test]
    fn large_positions_stay_within_the_byte_bound() {
        let hints = PageHints::default();
        // Sort keys as long as a userName may be: the byte bound, not the count, applies.
        let name = "n".repeat(4096);
        for n in 0..3_000 {
            let last = Position {
                key: SortValue::Text(format!("{name}{n}")),
                id: format!("id-{n}"),
            };
            let key = HintKey {
                filter: format!("f{n}"),
                ..key(0)
            };
            hints.record(key, 10, &last, 10, Instant::now());
            let (_, bytes) = hints.size();
            assert!(bytes <= MAX_HINT_BYTES, "{bytes} bytes after {n}");
        }
        let (len, _) = hints.size();
        assert!(len < 3_000, "{len}");
    }

    #[test]
    fn recording_the_same_page_again_replaces_it() {
        let hints = PageHints::default();
        hints.record(key(0), 10, &at("a"), 10, Instant::now());
        let once = hints.size();
        hints.record(key(0), 10, &at("b"), 10, Instant::now());
        assert_eq!(hints.size(), once);
        assert_eq!(
            hints.get(&key(10)).map(|c| c.after.id),
            Some("b".to_owned())
        );
    }

    #[test]
    fn old_totals_are_not_reused() {
        let hints = PageHints::default();
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(5))
            .unwrap_or_else(Instant::now);
        hints.record(key(0), 10, &at("id-10"), 20, long_ago);
        let c = hints.get(&key(10)).map(|c| c.total);
        assert_eq!(c, Some(None));
    }
}
