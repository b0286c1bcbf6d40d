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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a continuation is kept after its last use.
const HINT_TTL: Duration = Duration::from_secs(300);
/// How long a total is reused before it is counted again.
const TOTAL_TTL: Duration = Duration::from_secs(1);
const MAX_HINTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HintKey {
    pub tenant_id: String,
    pub resource: &'static str,
    pub filter: String,
    /// 0-based position of the page's first item.
    pub position: i64,
}

#[derive(Debug, Clone)]
struct Hint {
    after: String,
    total: i64,
    counted: Instant,
    used: Instant,
}

/// Where to continue a page, and the total if it is fresh enough to reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    pub after: String,
    /// The total and when it was counted, while that was less than a second ago.
    pub total: Option<(i64, Instant)>,
}

#[derive(Debug, Default)]
pub struct PageHints {
    hints: Mutex<HashMap<HintKey, Hint>>,
}

impl PageHints {
    /// The continuation for `key`, if a page ended exactly there.
    pub fn get(&self, key: &HintKey) -> Option<Continuation> {
        let mut hints = self.hints.lock().ok()?;
        let hint = hints.get_mut(key)?;
        if hint.used.elapsed() > HINT_TTL {
            return None;
        }
        hint.used = Instant::now();
        Some(Continuation {
            after: hint.after.clone(),
            total: (hint.counted.elapsed() < TOTAL_TTL).then_some((hint.total, hint.counted)),
        })
    }

    /// Records that the page at `key` held `items` items, the last with id `last`.
    /// `counted` is when `total` was counted.
    pub fn record(&self, key: HintKey, items: usize, last: &str, total: i64, counted: Instant) {
        let Ok(mut hints) = self.hints.lock() else {
            return;
        };
        if hints.len() >= MAX_HINTS {
            hints.retain(|_, h| h.used.elapsed() <= HINT_TTL);
            if hints.len() >= MAX_HINTS {
                hints.clear();
            }
        }
        let next = HintKey {
            position: key.position + i64::try_from(items).unwrap_or(i64::MAX),
            ..key
        };
        let now = Instant::now();
        hints.insert(
            next,
            Hint {
                after: last.to_owned(),
                total,
                counted,
                used: now,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        hints.record(key(0), 100, "id-100", 250, Instant::now());
        let c = hints.get(&key(100));
        assert_eq!(c.as_ref().map(|c| c.after.as_str()), Some("id-100"));
        assert_eq!(c.and_then(|c| c.total).map(|t| t.0), Some(250));
        assert_eq!(hints.get(&key(99)), None);
        let other_tenant = HintKey {
            tenant_id: "u".into(),
            ..key(100)
        };
        assert_eq!(hints.get(&other_tenant), None);
    }

    #[test]
    fn old_totals_are_not_reused() {
        let hints = PageHints::default();
        let long_ago = Instant::now()
            .checked_sub(Duration::from_secs(5))
            .unwrap_or_else(Instant::now);
        hints.record(key(0), 10, "id-10", 20, long_ago);
        let c = hints.get(&key(10)).map(|c| c.total);
        assert_eq!(c, Some(None));
    }
}
