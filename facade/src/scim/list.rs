//! List queries (RFC 7644 §3.4.2): `filter`, `startIndex`, `count`, and the ListResponse.

use std::future::Future;

use serde_json::{Map, Value};

use super::LIST_RESPONSE_URN;
use crate::error::ScimError;
use crate::extract::Params;

/// `GET /Users` / `GET /Groups` paging and filtering, normalised.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListQuery {
    /// Passed verbatim to the service, which parses it (invalidFilter).
    pub(crate) filter: String,
    /// 1-based; values below 1 are 1.
    pub(crate) start_index: i32,
    /// 0..=max_page_size; 0 asks for `totalResults` only.
    pub(crate) count: i32,
}

const DEFAULT_COUNT: i32 = 100;

impl ListQuery {
    pub(crate) fn from_params(params: &Params, max_page_size: i32) -> Result<Self, ScimError> {
        let start_index = int_param(params, "startIndex")?.unwrap_or(1).max(1);
        let count = int_param(params, "count")?
            .unwrap_or(DEFAULT_COUNT.into())
            .clamp(0, max_page_size.max(0).into());
        Ok(Self {
            filter: params.get("filter").unwrap_or_default().trim().to_owned(),
            start_index: i32::try_from(start_index).unwrap_or(i32::MAX),
            count: i32::try_from(count).unwrap_or(i32::MAX),
        })
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
