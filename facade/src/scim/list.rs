//! List queries (RFC 7644 §3.4.2): `filter`, `startIndex`, `count`, `attributes` and
//! `excludedAttributes`, from the query string of `GET /Users` / `GET /Groups` or from the
//! SearchRequest body of `POST …/.search` (§3.4.3); and the ListResponse.
//!
//! Sorting: RFC 7644 §3.4.2.3 makes sorting OPTIONAL, and Roster does not sort (its
//! ServiceProviderConfig says `sort.supported: false`, RFC 7643 §5), so `sortBy` and `sortOrder`
//! are accepted and ignored, on GET and in a SearchRequest alike: results come in the service's
//! order.

use std::future::Future;

use serde_json::{Map, Value};

use super::project::attribute_list;
use super::{LIST_RESPONSE_URN, SEARCH_REQUEST_URN, as_object, check_schemas, get_ci};
use crate::error::ScimError;
use crate::extract::Params;

/// A list query, normalised: `GET /Users?…` and `POST /Users/.search` (and the same for Groups,
/// and the root `/.search`) parse into this, and one code path answers it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListQuery {
    /// Passed verbatim to the service, which parses it (invalidFilter).
    pub(crate) filter: String,
    /// 1-based; values below 1 are 1.
    pub(crate) start_index: i32,
    /// 0..=max_page_size; 0 asks for `totalResults` only.
    pub(crate) count: i32,
    /// `attributes`: one attribute reference per item.
    pub(crate) attributes: Vec<String>,
    /// `excludedAttributes`: one attribute reference per item.
    pub(crate) excluded_attributes: Vec<String>,
}

const DEFAULT_COUNT: i32 = 100;

impl ListQuery {
    /// From the query string: `attributes` and `excludedAttributes` are comma-separated lists.
    /// `sortBy` and `sortOrder` are ignored (see the module documentation).
    pub(crate) fn from_params(params: &Params, max_page_size: i32) -> Result<Self, ScimError> {
        Ok(Self::normalise(
            params.get("filter").unwrap_or_default(),
            int_param(params, "startIndex")?,
            int_param(params, "count")?,
            attribute_list(params, "attributes"),
            attribute_list(params, "excludedAttributes"),
            max_page_size,
        ))
    }

    /// From a SearchRequest body (RFC 7644 §3.4.3): `schemas` must name the SearchRequest URN;
    /// every other member is optional. `attributes` and `excludedAttributes` are lists of
    /// strings here. `sortBy` and `sortOrder` must be strings when given, and are ignored (see
    /// the module documentation).
    pub(crate) fn from_search_request(body: &Value, max_page_size: i32) -> Result<Self, ScimError> {
        let doc = as_object(body, "a SearchRequest")?;
        check_schemas(doc, SEARCH_REQUEST_URN, &[SEARCH_REQUEST_URN])?;
        let filter = string_member(doc, "filter")?;
        let start_index = int_member(doc, "startIndex")?;
        let count = int_member(doc, "count")?;
        let attributes = string_list_member(doc, "attributes")?;
        let excluded_attributes = string_list_member(doc, "excludedAttributes")?;
        string_member(doc, "sortBy")?;
        string_member(doc, "sortOrder")?;
        Ok(Self::normalise(
            filter.unwrap_or_default(),
            start_index,
            count,
            attributes,
            excluded_attributes,
            max_page_size,
        ))
    }

    fn normalise(
        filter: &str,
        start_index: Option<i64>,
        count: Option<i64>,
        attributes: Vec<String>,
        excluded_attributes: Vec<String>,
        max_page_size: i32,
    ) -> Self {
        let start_index = start_index.unwrap_or(1).max(1);
        let count = count
            .unwrap_or(DEFAULT_COUNT.into())
            .clamp(0, max_page_size.max(0).into());
        Self {
            filter: filter.trim().to_owned(),
            start_index: i32::try_from(start_index).unwrap_or(i32::MAX),
            count: i32::try_from(count).unwrap_or(i32::MAX),
            attributes,
            excluded_attributes,
        }
    }

    /// The service's `skip`: matches before `startIndex`.
    pub(crate) fn skip(&self) -> i32 {
        self.start_index - 1
    }

    /// The service's `page_size` for the first page. The service reads 0 as its default, so a
    /// `count=0` request asks for one match and drops it: only `totalResults` is wanted.
    pub(crate) fn page_size(&self) -> i32 {
        self.count.max(1)
    }
}

/// One page of a list RPC.
pub(crate) struct Page<T> {
    pub(crate) items: Vec<T>,
    pub(crate) next_page_token: String,
    pub(crate) total_size: i64,
}

impl ListQuery {
    /// Up to `count` matches and the total: one call to `fetch(page_token, page_size)`, more
    /// only if the service answers shorter pages than asked.
    pub(crate) async fn collect<T, F, Fut>(
        &self,
        mut fetch: F,
    ) -> Result<(Vec<T>, i64), tonic::Status>
    where
        F: FnMut(String, i32) -> Fut,
        Fut: Future<Output = Result<Page<T>, tonic::Status>>,
    {
        let wanted = usize::try_from(self.count).unwrap_or(0);
        let (mut page_token, mut page_size) = (String::new(), self.page_size());
        let mut items = Vec::new();
        loop {
            let page = fetch(page_token, page_size).await?;
            let got = page.items.len();
            items.extend(page.items);
            if items.len() >= wanted || page.next_page_token.is_empty() || got == 0 {
                items.truncate(wanted);
                return Ok((items, page.total_size));
            }
            page_token = page.next_page_token;
            page_size = i32::try_from(wanted - items.len()).unwrap_or(i32::MAX);
        }
    }
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

/// A ListResponse. `Resources` is always present, `[]` when nothing matched.
pub(crate) fn list_response(total: i64, start_index: i32, resources: Vec<Value>) -> Value {
    let mut doc = Map::new();
    doc.insert("schemas".into(), super::schemas(&[LIST_RESPONSE_URN]));
    doc.insert("totalResults".into(), total.into());
    doc.insert("itemsPerPage".into(), resources.len().into());
    doc.insert("startIndex".into(), start_index.into());
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
        assert_eq!(
            (q.start_index, q.count, q.skip(), q.page_size()),
            (1, 0, 0, 1)
        );
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
            ("sortBy", "userName"),
            ("sortOrder", "descending"),
        ])
        .unwrap();
        assert_eq!(q.attributes, vec!["userName", "emails.value"]);
        assert_eq!(q.excluded_attributes, vec!["members"]);
        // Sorting is ignored: the same query as without it.
        assert_eq!(
            q,
            query(&[
                ("attributes", "userName,emails.value"),
                ("excludedAttributes", "members")
            ])
            .unwrap()
        );
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
        let (items, total) = q
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
                    total_size: 7,
                }))
            })
            .await
            .unwrap();
        assert_eq!(items, vec![0, 1, 2, 3, 4]);
        assert_eq!(total, 7);
        assert_eq!(
            asked,
            vec![(String::new(), 5), ("2".into(), 3), ("4".into(), 1)]
        );
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
