//! List queries (RFC 7644 §3.4.2): `filter`, `sortBy`/`sortOrder`, `startIndex`/`count` or
//! `cursor`/`count` (RFC 9865), `attributes` and `excludedAttributes`, from the query string of
//! `GET /Users` / `GET /Groups` or from the SearchRequest body of `POST …/.search` (§3.4.3);
//! and the ListResponse.
//!
//! Sorting (§3.4.2.3): `sortBy` is passed to the service, which knows what each resource type
//! sorts by and answers 400 `invalidValue` for anything else; `sortOrder` is `ascending`
//! (default) or `descending`, letter case ignored.
//!
//! Paging: index paging (`startIndex`, the default, RFC 7644 §3.4.2.4) or cursor paging
//! (`cursor`, RFC 9865: empty for the first page, then a `nextCursor` or `previousCursor`). A
//! cursor is the service's page token: opaque, bound to the filter and sort it was issued for
//! (another query's cursor is 400 `invalidCursor`), and it does not expire. `startIndex` and
//! `cursor` together are 400 `invalidValue`.

use std::future::Future;

use roster_proto::DEFAULT_PAGE_SIZE;
use serde_json::{Map, Value};

use super::project::attribute_list;
use super::{LIST_RESPONSE_URN, SEARCH_REQUEST_URN, as_object, check_schemas, get_ci};
use crate::error::{ScimError, ScimType};
use crate::extract::Params;

/// A list query, normalised: `GET /Users?…` and `POST /Users/.search` (and the same for Groups,
/// and the root `/.search`) parse into this, and one code path answers it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListQuery {
    /// Passed verbatim to the service, which parses it (invalidFilter).
    pub(crate) filter: String,
    /// 1-based; values below 1 are 1. Unused with a cursor.
    pub(crate) start_index: i32,
    /// 0..=max_page_size; 0 asks for `totalResults` only (index paging only: with a cursor it is
    /// at least 1).
    pub(crate) count: i32,
    /// `attributes`: one attribute reference per item.
    pub(crate) attributes: Vec<String>,
    /// `excludedAttributes`: one attribute reference per item.
    pub(crate) excluded_attributes: Vec<String>,
    /// `sortBy`, trimmed (the service resolves it); empty: the service's order (creation).
    pub(crate) sort_by: String,
    /// `sortOrder=descending` (with a `sortBy`).
    pub(crate) descending: bool,
    /// Cursor paging: `Some("")` for the first page, else the cursor the client sent back.
    pub(crate) cursor: Option<String>,
}

/// The members of a list request, as sent.
struct Raw<'a> {
    filter: &'a str,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Vec<String>,
    excluded_attributes: Vec<String>,
    sort_by: Option<&'a str>,
    sort_order: Option<&'a str>,
    cursor: Option<&'a str>,
}

impl ListQuery {
    /// From the query string: `attributes` and `excludedAttributes` are comma-separated lists.
    pub(crate) fn from_params(params: &Params, max_page_size: i32) -> Result<Self, ScimError> {
        Self::normalise(
            Raw {
                filter: params.get("filter").unwrap_or_default(),
                start_index: int_param(params, "startIndex")?,
                count: int_param(params, "count")?,
                attributes: attribute_list(params, "attributes"),
                excluded_attributes: attribute_list(params, "excludedAttributes"),
                sort_by: params.get("sortBy"),
                sort_order: params.get("sortOrder"),
                cursor: params.get("cursor"),
            },
            max_page_size,
        )
    }

    /// From a SearchRequest body (RFC 7644 §3.4.3): `schemas` must name the SearchRequest URN;
    /// every other member is optional. `attributes` and `excludedAttributes` are lists of
    /// strings here; `sortBy`, `sortOrder` and `cursor` are strings.
    pub(crate) fn from_search_request(body: &Value, max_page_size: i32) -> Result<Self, ScimError> {
        let doc = as_object(body, "a SearchRequest")?;
        check_schemas(doc, SEARCH_REQUEST_URN, &[SEARCH_REQUEST_URN])?;
        Self::normalise(
            Raw {
                filter: string_member(doc, "filter")?.unwrap_or_default(),
                start_index: int_member(doc, "startIndex")?,
                count: int_member(doc, "count")?,
                attributes: string_list_member(doc, "attributes")?,
                excluded_attributes: string_list_member(doc, "excludedAttributes")?,
                sort_by: string_member(doc, "sortBy")?,
                sort_order: string_member(doc, "sortOrder")?,
                cursor: string_member(doc, "cursor")?,
            },
            max_page_size,
        )
    }

    fn normalise(raw: Raw<'_>, max_page_size: i32) -> Result<Self, ScimError> {
        let max = i64::from(max_page_size.max(1));
        let descending = match raw.sort_order.map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder is \"ascending\" or \"descending\", not {o:?}"
                )));
            }
        };
        let cursor = raw.cursor.map(|c| c.trim().to_owned());
        let count = match (&cursor, raw.count) {
            (Some(_), _) if raw.start_index.is_some() => {
                return Err(ScimError::invalid_value(
                    "startIndex and cursor are two ways of paging: send one of them",
                ));
            }
            // RFC 9865: with a cursor, count is a positive integer.
            (Some(_), Some(n)) if n < 1 => {
                return Err(ScimError::bad_request(
                    ScimType::InvalidCount,
                    format!("with a cursor, count is between 1 and {max}"),
                ));
            }
            // RFC 7644 §3.4.2.4: a negative count is 0; above the maximum, the maximum.
            (_, n) => n.unwrap_or(DEFAULT_PAGE_SIZE.into()).clamp(0, max),
        };
        Ok(Self {
            filter: raw.filter.trim().to_owned(),
            start_index: i32::try_from(raw.start_index.unwrap_or(1).max(1)).unwrap_or(i32::MAX),
            count: i32::try_from(count).unwrap_or(i32::MAX),
            attributes: raw.attributes,
            excluded_attributes: raw.excluded_attributes,
            sort_by: raw.sort_by.unwrap_or_default().trim().to_owned(),
            descending,
            cursor,
        })
    }

    /// The service's `skip`: matches before `startIndex` (none with a cursor).
    pub(crate) fn skip(&self) -> i32 {
        if self.cursor.is_some() {
            0
        } else {
            self.start_index - 1
        }
    }

    /// The service's `descending` (only with a `sortBy`).
    pub(crate) fn descending(&self) -> bool {
        self.descending && !self.sort_by.is_empty()
    }
}

/// One page of a list RPC.
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    pub(crate) next_page_token: String,
    pub(crate) previous_page_token: String,
    pub(crate) total_size: i64,
}

/// What a list query found: up to `count` matches, the number of all matches, and the page
/// tokens around them.
pub(crate) struct Listed<T> {
    pub(crate) items: Vec<T>,
    pub(crate) total: i64,
    pub(crate) next_page_token: String,
    pub(crate) previous_page_token: String,
}

impl<T> Listed<T> {
    pub(crate) fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            next_page_token: self.next_page_token,
            previous_page_token: self.previous_page_token,
        }
    }
}

impl ListQuery {
    /// Up to `count` matches and the total: one call to `fetch(page_token, page_size)`, more
    /// only if the service answers shorter pages than asked. `page_size` 0 asks for the total
    /// alone (`count=0`): the service reads no resource.
    pub(crate) async fn collect<T, F, Fut>(&self, mut fetch: F) -> Result<Listed<T>, tonic::Status>
    where
        F: FnMut(String, i32) -> Fut,
        Fut: Future<Output = Result<Page<T>, tonic::Status>>,
    {
        let wanted = usize::try_from(self.count).unwrap_or(0);
        let mut page_token = self.cursor.clone().unwrap_or_default();
        let mut page_size = self.count;
        let mut items = Vec::new();
        let mut previous_page_token = None;
        loop {
            let page = fetch(page_token, page_size).await?;
            let got = page.items.len();
            items.extend(page.items);
            let previous = previous_page_token.get_or_insert(page.previous_page_token);
            if items.len() >= wanted || page.next_page_token.is_empty() || got == 0 {
                items.truncate(wanted);
                return Ok(Listed {
                    items,
                    total: page.total_size,
                    next_page_token: page.next_page_token,
                    previous_page_token: std::mem::take(previous),
                });
            }
            page_token = page.next_page_token;
            page_size = i32::try_from(wanted - items.len()).unwrap_or(i32::MAX);
        }
    }

    /// The ListResponse for `listed` (already rendered): with `startIndex` for index paging,
    /// with `nextCursor` (every page but the last) and `previousCursor` (every page but the
    /// first) for cursor paging.
    pub(crate) fn response(&self, listed: Listed<Value>) -> Value {
        let paging = match self.cursor {
            None => Paging::Index {
                start_index: self.start_index,
            },
            Some(_) => Paging::Cursor {
                next: listed.next_page_token,
                previous: listed.previous_page_token,
            },
        };
        paged_response(listed.total, &paging, listed.items)
    }
}

/// How a ListResponse says where its page is.
enum Paging {
    Index { start_index: i32 },
    Cursor { next: String, previous: String },
}

fn int_param(params: &Params, name: &str) -> Result<Option<i64>, ScimError> {
    let Some(raw) = params.get(name).map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| ScimError::invalid_value(format!("'{name}' must be an integer")))
}

/// A string member of a SearchRequest; absent or `null` is `None`.
fn string_member<'a>(
    doc: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ScimError> {
    match get_ci(doc, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ScimError::invalid_value(format!(
            "'{name}' must be a string"
        ))),
    }
}

/// An integer member of a SearchRequest; absent or `null` is `None`. Integers beyond `i64`
/// saturate (they are clamped anyway); fractions are refused.
fn int_member(doc: &Map<String, Value>, name: &str) -> Result<Option<i64>, ScimError> {
    match get_ci(doc, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(n.as_i64().unwrap_or(i64::MAX)))
        }
        Some(_) => Err(ScimError::invalid_value(format!(
            "'{name}' must be an integer"
        ))),
    }
}

/// A list-of-strings member of a SearchRequest (`attributes`, `excludedAttributes`), one
/// attribute reference per item, trimmed, blanks dropped (as the query string's lists are);
/// absent or `null` is empty. A comma-separated string is refused: the body carries a JSON list.
fn string_list_member(doc: &Map<String, Value>, name: &str) -> Result<Vec<String>, ScimError> {
    let invalid = || ScimError::invalid_value(format!("'{name}' must be a list of strings"));
    let items = match get_ci(doc, name) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid()),
    };
    let mut list = Vec::with_capacity(items.len());
    for item in items {
        let reference = item.as_str().ok_or_else(invalid)?.trim();
        if !reference.is_empty() {
            list.push(reference.to_owned());
        }
    }
    Ok(list)
}

/// An index-paged ListResponse. `Resources` is always present, `[]` when nothing matched.
pub(crate) fn list_response(total: i64, start_index: i32, resources: Vec<Value>) -> Value {
    paged_response(total, &Paging::Index { start_index }, resources)
}

fn paged_response(total: i64, paging: &Paging, resources: Vec<Value>) -> Value {
    let mut doc = Map::new();
    doc.insert("schemas".into(), super::schemas(&[LIST_RESPONSE_URN]));
    doc.insert("totalResults".into(), total.into());
    doc.insert("itemsPerPage".into(), resources.len().into());
    match paging {
        Paging::Index { start_index } => {
            doc.insert("startIndex".into(), (*start_index).into());
        }
        Paging::Cursor { next, previous } => {
            if !next.is_empty() {
                doc.insert("nextCursor".into(), next.clone().into());
            }
            if !previous.is_empty() {
                doc.insert("previousCursor".into(), previous.clone().into());
            }
        }
    }
    doc.insert("Resources".into(), Value::Array(resources));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(pairs: &[(&str, &str)]) -> Result<ListQuery, ScimError> {
        ListQuery::from_params(&Params::from_pairs(pairs), 1000)
    }

    #[test]
    fn defaults_and_clamping() {
        let q = query(&[]).unwrap();
        assert_eq!((q.start_index, q.count, q.filter.as_str()), (1, 100, ""));
        let q = query(&[("startIndex", "0"), ("count", "-5")]).unwrap();
        assert_eq!((q.start_index, q.count, q.skip()), (1, 0, 0));
        let q = query(&[("startindex", "101"), ("COUNT", "100000")]).unwrap();
        assert_eq!((q.start_index, q.count, q.skip()), (101, 1000, 100));
        let q = query(&[("startIndex", "99999999999")]).unwrap();
        assert_eq!(q.start_index, i32::MAX);
        let q = query(&[("filter", "userName eq \"a b\"")]).unwrap();
        assert_eq!(q.filter, "userName eq \"a b\"");
        assert!(query(&[("count", "ten")]).is_err());
    }

    #[test]
    fn attribute_lists_and_sorting_from_the_query() {
        let q = query(&[
            ("attributes", "userName, emails.value,,"),
            ("excludedAttributes", "members"),
            ("sortBy", " name.familyName "),
            ("sortOrder", "DESCENDING"),
        ])
        .unwrap();
        assert_eq!(q.attributes, vec!["userName", "emails.value"]);
        assert_eq!(q.excluded_attributes, vec!["members"]);
        assert_eq!(
            (q.sort_by.as_str(), q.descending()),
            ("name.familyName", true)
        );
        let q = query(&[("sortBy", "userName"), ("sortOrder", "Ascending")]).unwrap();
        assert!(!q.descending());
        // A sortOrder without sortBy changes nothing.
        let q = query(&[("sortOrder", "descending")]).unwrap();
        assert!(!q.descending());
        let err = query(&[("sortBy", "userName"), ("sortOrder", "down")]).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(crate::error::ScimType::InvalidValue),
            "{err}"
        );
    }

    #[test]
    fn cursor_paging_parameters() {
        use crate::error::ScimType::{InvalidCount, InvalidValue};
        // `cursor` alone (no value) asks for the first page of cursor paging.
        let q = query(&[("cursor", ""), ("count", "10")]).unwrap();
        assert_eq!((q.cursor.as_deref(), q.count, q.skip()), (Some(""), 10, 0));
        let q = query(&[("cursor", "abc"), ("count", "5000")]).unwrap();
        assert_eq!((q.cursor.as_deref(), q.count), (Some("abc"), 1000));
        let q = query(&[("cursor", "abc")]).unwrap();
        assert_eq!(q.count, 100);
        assert_eq!(query(&[]).unwrap().cursor, None);
        let refused = [
            (vec![("cursor", ""), ("startIndex", "1")], InvalidValue),
            (vec![("cursor", "abc"), ("count", "0")], InvalidCount),
            (vec![("cursor", ""), ("count", "-1")], InvalidCount),
        ];
        for (pairs, scim_type) in refused {
            let err = query(&pairs).unwrap_err();
            assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{pairs:?}");
            assert_eq!(err.scim_type, Some(scim_type), "{pairs:?}");
        }
        let q = search(json!({"schemas": [SEARCH_REQUEST_URN], "cursor": "", "count": 2})).unwrap();
        assert_eq!((q.cursor.as_deref(), q.count), (Some(""), 2));
    }

    fn search(body: Value) -> Result<ListQuery, ScimError> {
        ListQuery::from_search_request(&body, 1000)
    }

    #[test]
    fn a_search_request_parses_into_the_same_query_as_get() {
        let body = json!({
            "schemas": [SEARCH_REQUEST_URN],
            "filter": " userName eq \"a b\" ",
            "startIndex": 101,
            "count": 100000,
            "attributes": ["userName", " emails.value", ""],
            "excludedAttributes": ["members"],
            "sortBy": "userName",
            "sortOrder": "descending"
        });
        let get = query(&[
            ("filter", "userName eq \"a b\""),
            ("startIndex", "101"),
            ("count", "100000"),
            ("attributes", "userName,emails.value"),
            ("excludedAttributes", "members"),
            ("sortBy", "userName"),
            ("sortOrder", "descending"),
        ])
        .unwrap();
        assert_eq!(search(body).unwrap(), get);
        // Only `schemas` is required; `null` is absent; member names ignore case.
        let minimal = search(json!({"Schemas": [SEARCH_REQUEST_URN], "count": null})).unwrap();
        assert_eq!(minimal, query(&[]).unwrap());
        let q = search(json!({"schemas": [SEARCH_REQUEST_URN], "startIndex": -3, "COUNT": -1}))
            .unwrap();
        assert_eq!((q.start_index, q.count), (1, 0));
        let q = search(json!({"schemas": [SEARCH_REQUEST_URN], "startIndex": u64::MAX})).unwrap();
        assert_eq!(q.start_index, i32::MAX);
    }

    #[test]
    fn bad_search_requests_are_refused() {
        use crate::error::ScimType::{InvalidSyntax, InvalidValue};
        let urn = SEARCH_REQUEST_URN;
        let cases = [
            (json!([]), InvalidSyntax),
            (json!("x"), InvalidSyntax),
            (json!({}), InvalidValue),
            (json!({"schemas": urn}), InvalidValue),
            (json!({"schemas": [LIST_RESPONSE_URN]}), InvalidValue),
            (json!({"schemas": [urn, "urn:x"]}), InvalidValue),
            (json!({"schemas": [urn], "filter": ["a"]}), InvalidValue),
            (json!({"schemas": [urn], "startIndex": "1"}), InvalidValue),
            (json!({"schemas": [urn], "count": 2.5}), InvalidValue),
            (json!({"schemas": [urn], "attributes": "a,b"}), InvalidValue),
            (
                json!({"schemas": [urn], "attributes": [null]}),
                InvalidValue,
            ),
            (
                json!({"schemas": [urn], "excludedAttributes": {}}),
                InvalidValue,
            ),
            (json!({"schemas": [urn], "sortBy": 1}), InvalidValue),
            (json!({"schemas": [urn], "sortOrder": false}), InvalidValue),
            (json!({"schemas": [urn], "sortOrder": "up"}), InvalidValue),
            (json!({"schemas": [urn], "cursor": 1}), InvalidValue),
        ];
        for (body, scim_type) in cases {
            let err = search(body.clone()).unwrap_err();
            assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(err.scim_type, Some(scim_type), "{body}");
        }
    }

    #[tokio::test]
    async fn collect_follows_short_pages_and_stops() {
        let q = query(&[("count", "5")]).unwrap();
        let mut asked = Vec::new();
        let listed = q
            .collect(|token, size| {
                asked.push((token.clone(), size));
                // The service answers at most 2 per page, 7 in all.
                let start: usize = token.parse().unwrap_or(0);
                let end = (start + 2).min(7);
                std::future::ready(Ok(Page {
                    items: (start..end).collect::<Vec<_>>(),
                    next_page_token: if end < 7 {
                        end.to_string()
                    } else {
                        String::new()
                    },
                    previous_page_token: format!("before {start}"),
                    total_size: 7,
                }))
            })
            .await
            .unwrap();
        assert_eq!(listed.items, vec![0, 1, 2, 3, 4]);
        assert_eq!(listed.total, 7);
        // The page's tokens: before its first item, after its last.
        assert_eq!(listed.previous_page_token, "before 0");
        assert_eq!(listed.next_page_token, "6");
        assert_eq!(
            asked,
            vec![(String::new(), 5), ("2".into(), 3), ("4".into(), 1)]
        );
    }

    #[tokio::test]
    async fn count_zero_asks_for_the_total_alone_and_a_cursor_starts_the_paging() {
        let mut asked = Vec::new();
        let mut fetch = |token: String, size: i32| {
            asked.push((token, size));
            std::future::ready(Ok(Page {
                items: vec![1; usize::try_from(size).unwrap().min(3)],
                next_page_token: String::new(),
                previous_page_token: String::new(),
                total_size: 3,
            }))
        };
        let listed = query(&[("count", "0")])
            .unwrap()
            .collect(&mut fetch)
            .await
            .unwrap();
        assert_eq!((listed.items.len(), listed.total), (0, 3));
        query(&[("cursor", "c1"), ("count", "2")])
            .unwrap()
            .collect(&mut fetch)
            .await
            .unwrap();
        assert_eq!(asked, vec![(String::new(), 0), ("c1".into(), 2)]);
    }

    #[test]
    fn cursor_responses_carry_cursors_and_no_start_index() {
        let listed = |next: &str, previous: &str| Listed {
            items: vec![json!({"id": "1"})],
            total: 3,
            next_page_token: next.into(),
            previous_page_token: previous.into(),
        };
        let q = query(&[("cursor", "")]).unwrap();
        let first = q.response(listed("n1", ""));
        assert_eq!(first["nextCursor"], "n1");
        assert!(first.get("previousCursor").is_none());
        assert!(first.get("startIndex").is_none());
        let last = q.response(listed("", "p2"));
        assert!(last.get("nextCursor").is_none(), "{last}");
        assert_eq!(last["previousCursor"], "p2");
        // Index paging: startIndex, never a cursor.
        let indexed = query(&[]).unwrap().response(listed("n1", "p0"));
        assert_eq!(indexed["startIndex"], 1);
        assert!(indexed.get("nextCursor").is_none());
        assert!(indexed.get("previousCursor").is_none());
    }

    #[test]
    fn list_response_has_integer_fields() {
        assert_eq!(
            list_response(0, 1, vec![]),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 0, "itemsPerPage": 0, "startIndex": 1, "Resources": []
            })
        );
    }
}
