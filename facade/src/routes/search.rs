//! `POST /scim/v2/.search` (RFC 7644 §3.4.3): a search across every resource type Roster
//! serves, Users then Groups.
//!
//! The ListResponse pages over the concatenation of the matching users and the matching groups:
//! `totalResults` is the sum of both counts, and `startIndex`/`count` select a window of it that
//! may end in the users, start in the groups, or span both. ListUsers answers first (its total
//! says where the groups begin); ListGroups then fills what is left of the window.
//!
//! Sorting and cursor paging are per resource type: `sortBy` or `cursor` here is 400
//! `invalidValue` (use `/Users/.search` or `/Groups/.search`), rather than an order or a cursor
//! that would not mean what the client asked for.
//!
//! A filter that names an attribute one resource type does not have matches nothing there
//! (RFC 7644 §3.4.2.2): an invalidFilter from one type counts as no matches of that type, as
//! long as the other type accepted the filter. When both refuse it, the answer is 400
//! invalidFilter.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde_json::Value;

use super::{groups, users};
use crate::AppState;
use crate::error::{ScimError, ScimType, is_invalid_filter};
use crate::extract::{BaseUrl, JsonBody};
use crate::grpc::Grpc;
use crate::response::scim_json;
use crate::scim::list::{ListQuery, Listed, list_response};

/// The matches of one resource type in the window; none when it refused the filter.
struct Found {
    resources: Vec<Value>,
    total: i64,
    refused: Option<tonic::Status>,
}

impl Found {
    fn of(result: Result<Listed<Value>, tonic::Status>) -> Result<Self, ScimError> {
        match result {
            Ok(listed) => Ok(Self {
                resources: listed.items,
                total: listed.total,
                refused: None,
            }),
            Err(status) if is_invalid_filter(&status) => Ok(Self {
                resources: Vec::new(),
                total: 0,
                refused: Some(status),
            }),
            Err(status) => Err(status.into()),
        }
    }
}

/// `POST /.search`: ListUsers for the window, then ListGroups for what is left of it (and for
/// the groups' total).
pub(crate) async fn search(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_search_request(&body, state.config.max_page_size)?;
    if !query.sort_by.is_empty() || query.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "sortBy and cursor apply to one resource type: search /Users/.search or \
             /Groups/.search",
        ));
    }
    let users = Found::of(users::find(&grpc, &base, &query).await)?;
    let groups_query = groups_window(&query, users.total, users.resources.len());
    let groups = Found::of(groups::find(&grpc, &base, &groups_query).await)?;
    if let (Some(u), Some(g)) = (&users.refused, &groups.refused) {
        return Err(ScimError::bad_request(
            ScimType::InvalidFilter,
            format!(
                "the filter is valid for neither Users ({}) nor Groups ({})",
                u.message(),
                g.message()
            ),
        ));
    }
    let total = users.total.saturating_add(groups.total);
    let mut resources = users.resources;
    resources.extend(groups.resources);
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, query.start_index, resources),
    ))
}

/// The part of the window `query` asks for that falls in the groups, given `users_total`
/// matching users of which `users_returned` are in the window: the groups start at position
/// `users_total + 1` of the concatenation.
fn groups_window(query: &ListQuery, users_total: i64, users_returned: usize) -> ListQuery {
    let skip = (i64::from(query.skip()) - users_total).max(0);
    let returned = i32::try_from(users_returned).unwrap_or(i32::MAX);
    ListQuery {
        start_index: i32::try_from(skip + 1).unwrap_or(i32::MAX),
        count: query.count.saturating_sub(returned).max(0),
        ..query.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::Params;

    fn query(start_index: &str, count: &str) -> ListQuery {
        let params = Params::from_pairs(&[("startIndex", start_index), ("count", count)]);
        ListQuery::from_params(&params, 1000).unwrap()
    }

    fn window(q: &ListQuery, users_total: i64, users_returned: usize) -> (i32, i32) {
        let g = groups_window(q, users_total, users_returned);
        (g.start_index, g.count)
    }

    #[test]
    fn the_groups_window_follows_the_users() {
        // 3 users, 2 groups: positions 1-3 are users, 4-5 groups.
        assert_eq!(window(&query("1", "2"), 3, 2), (1, 0));
        assert_eq!(window(&query("3", "2"), 3, 1), (1, 1));
        assert_eq!(window(&query("4", "2"), 3, 0), (1, 2));
        assert_eq!(window(&query("5", "10"), 3, 0), (2, 10));
        assert_eq!(window(&query("9", "10"), 3, 0), (6, 10));
        // No users at all (or the filter refused by Users): the window is the groups'.
        assert_eq!(window(&query("2", "3"), 0, 0), (2, 3));
        // count=0: totals only.
        assert_eq!(window(&query("1", "0"), 3, 0), (1, 0));
        // Far out: no overflow.
        let far = query("2147483647", "1000");
        assert_eq!(window(&far, 0, 0), (i32::MAX, 1000));
        assert_eq!(window(&far, i64::MAX, 0), (1, 1000));
    }
}
