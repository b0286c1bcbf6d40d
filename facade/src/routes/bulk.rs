//! `POST /Bulk` (RFC 7644 §3.7): many operations in one request, each carried out by the same
//! function as its single-resource route (`users::create_user`, `groups::patch_group`, ...).
//!
//! - Bulk is not atomic: each operation is its own write (its own transaction in the service);
//!   a failure does not undo the operations before it.
//! - Operations run in the order of the request, except that a `POST` whose `bulkId` another
//!   operation references runs before the first operation that references it (RFC 7644 §3.7.2:
//!   "bulkId:<id>" in a `path` or anywhere in `data` becomes the new resource's id).
//!   References that form a cycle are not resolved: RFC 7644 §3.7.1 allows the service
//!   provider to "stop after a failed attempt and instead return HTTP status code 409", and
//!   every operation of the cycle answers 409. So does a reference to a `bulkId` that no `POST`
//!   of the request declares, or whose `POST` failed.
//! - `failOnErrors: N` stops after the N-th failure; the response lists the operations that
//!   ran, in request order.
//! - `version` is the operation's `If-Match`.
//! - More than `maxOperations` operations, a body over `maxPayloadSize` (the facade's body
//!   limit), or operations carrying more than `limits::MAX_BULK_VALUES` JSON values together,
//!   is 413 for the whole request (RFC 7644 §3.7.4), before anything runs. The nesting of the
//!   body is bounded like any body's (`limits::MAX_JSON_DEPTH`); each operation's `data` is
//!   then held to the limits of its single-resource route (a PATCH's to `limits`' PATCH
//!   bounds), its failure answered in its own result.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use roster_proto::v1::GroupView;
use serde_json::{Map, Value, json};

use super::discovery::Authenticated;
use super::{groups, users};
use crate::AppState;
use crate::cpu::CpuPool;
use crate::error::ScimError;
use crate::extract::{BaseUrl, JsonBody, parse_entity_tag};
use crate::grpc::Grpc;
use crate::limits::{MAX_BULK_VALUES, count_values};
use crate::response::{scim_json, weak_etag};
use crate::scim::{BULK_REQUEST_URN, BULK_RESPONSE_URN, as_object, get_ci};

/// The prefix of a reference to the resource a `POST` of the same request creates.
const BULK_ID_PREFIX: &str = "bulkId:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn parse(raw: &str) -> Option<Self> {
        [
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("PATCH", Method::Patch),
            ("DELETE", Method::Delete),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(raw))
        .map(|(_, m)| m)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Users,
    Groups,
}

impl Endpoint {
    fn as_str(self) -> &'static str {
        match self {
            Endpoint::Users => "Users",
            Endpoint::Groups => "Groups",
        }
    }
}

/// What a valid operation does.
#[derive(Debug, Clone)]
struct Action {
    method: Method,
    endpoint: Endpoint,
    /// The resource id (`None` for a POST); may be a `bulkId:` reference.
    id: Option<String>,
    data: Option<Value>,
    /// The `version`, as an entity tag without `W/` and quotes.
    if_match: Option<String>,
}

/// One operation of the request, as written, and what it does or why it is invalid.
#[derive(Debug)]
struct Operation {
    /// `method` as written (echoed in the response).
    method: Value,
    bulk_id: Option<String>,
    action: Result<Action, ScimError>,
}

struct BulkRequest {
    fail_on_errors: Option<u64>,
    operations: Vec<Operation>,
}

/// `POST /Bulk`.
pub(crate) async fn bulk(
    _: Authenticated,
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let request = parse_request(&body, state.config.bulk_max_operations)?;
    let results = run(
        &grpc,
        &state.cpu,
        &base,
        state.config.strict_schema,
        request,
    )
    .await;
    Ok(scim_json(
        StatusCode::OK,
        &json!({"schemas": [BULK_RESPONSE_URN], "Operations": results}),
    ))
}

fn parse_request(body: &Value, max_operations: usize) -> Result<BulkRequest, ScimError> {
    let map = as_object(body, "a BulkRequest")?;
    let names_bulk_request = match get_ci(map, "schemas") {
        Some(Value::Array(urns)) => urns.iter().any(|u| {
            u.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST_URN))
        }),
        _ => false,
    };
    if !names_bulk_request {
        return Err(ScimError::invalid_syntax(format!(
            "'schemas' must be a list containing \"{BULK_REQUEST_URN}\""
        )));
    }
    let Some(Value::Array(operations)) = get_ci(map, "Operations") else {
        return Err(ScimError::invalid_syntax("'Operations' must be a list"));
    };
    if operations.len() > max_operations {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!(
                "the bulk request has {} operations, more than maxOperations ({max_operations})",
                operations.len()
            ),
        ));
    }
    let values = operations
        .iter()
        .map(|op| count_values(op, MAX_BULK_VALUES))
        .try_fold(0usize, |total, n| {
            Some(total + n).filter(|t| *t <= MAX_BULK_VALUES)
        });
    if values.is_none() {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!(
                "the bulk request's operations carry more than {MAX_BULK_VALUES} values; split it"
            ),
        ));
    }
    let fail_on_errors = match get_ci(map, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
            ScimError::invalid_syntax("'failOnErrors' must be an integer of at least 1")
        })?),
    };
    Ok(BulkRequest {
        fail_on_errors,
        operations: operations.iter().map(parse_operation).collect(),
    })
}

fn parse_operation(op: &Value) -> Operation {
    let Value::Object(map) = op else {
        return Operation {
            method: Value::Null,
            bulk_id: None,
            action: Err(ScimError::invalid_syntax(
                "each operation must be an object",
            )),
        };
    };
    let bulk_id = match get_ci(map, "bulkId") {
        Some(Value::String(id)) => Some(id.clone()),
        _ => None,
    };
    Operation {
        method: get_ci(map, "method").cloned().unwrap_or(Value::Null),
        bulk_id,
        action: parse_action(map),
    }
}

fn parse_action(map: &Map<String, Value>) -> Result<Action, ScimError> {
    let method = get_ci(map, "method")
        .and_then(Value::as_str)
        .and_then(Method::parse)
        .ok_or_else(|| {
            ScimError::invalid_syntax("'method' must be \"POST\", \"PUT\", \"PATCH\" or \"DELETE\"")
        })?;
    let bulk_id = match get_ci(map, "bulkId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() => Some(id),
        Some(_) => {
            return Err(ScimError::invalid_syntax(
                "'bulkId' must be a non-empty string",
            ));
        }
    };
    if method == Method::Post && bulk_id.is_none() {
        return Err(ScimError::invalid_syntax(
            "a POST operation needs a 'bulkId'",
        ));
    }
    let path = get_ci(map, "path")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_syntax("each operation needs a 'path'"))?;
    let (endpoint, id) = parse_path(path).ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "'path' \"{path}\" is not /Users, /Groups, /Users/{{id}} or /Groups/{{id}}"
        ))
    })?;
    match (method, &id) {
        (Method::Post, Some(_)) => {
            return Err(ScimError::invalid_syntax(
                "a POST operation's 'path' is /Users or /Groups",
            ));
        }
        (Method::Put | Method::Patch | Method::Delete, None) => {
            return Err(ScimError::invalid_syntax(
                "a PUT, PATCH or DELETE operation's 'path' names a resource, e.g. /Users/{id}",
            ));
        }
        _ => {}
    }
    let data = match get_ci(map, "data") {
        None | Some(Value::Null) => None,
        Some(data) => Some(data.clone()),
    };
    if method != Method::Delete && data.is_none() {
        return Err(ScimError::invalid_syntax(
            "a POST, PUT or PATCH operation needs 'data'",
        ));
    }
    let if_match = match get_ci(map, "version") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => parse_entity_tag(v),
        Some(_) => return Err(ScimError::invalid_syntax("'version' must be a string")),
    };
    Ok(Action {
        method,
        endpoint,
        id,
        data,
        if_match,
    })
}

/// `/Users` or `/Groups`, optionally followed by `/{id}`.
fn parse_path(path: &str) -> Option<(Endpoint, Option<String>)> {
    let rest = path.trim().strip_prefix('/')?;
    let (collection, id) = match rest.split_once('/') {
        Some((c, id)) => (c, Some(id)),
        None => (rest, None),
    };
    let endpoint = if collection.eq_ignore_ascii_case("Users") {
        Endpoint::Users
    } else if collection.eq_ignore_ascii_case("Groups") {
        Endpoint::Groups
    } else {
        return None;
    };
    match id {
        None => Some((endpoint, None)),
        Some(id) if !id.is_empty() && !id.contains(['/', '?', '#']) => {
            Some((endpoint, Some(id.to_owned())))
        }
        Some(_) => None,
    }
}

/// The `bulkId`s an action references, in its path and anywhere in its data.
fn references(action: &Action) -> Vec<String> {
    let mut refs = Vec::new();
    if let Some(r) = action
        .id
        .as_deref()
        .and_then(|id| id.strip_prefix(BULK_ID_PREFIX))
    {
        refs.push(r.to_owned());
    }
    if let Some(data) = &action.data {
        collect_references(data, &mut refs);
    }
    refs
}

fn collect_references(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(r) = s.strip_prefix(BULK_ID_PREFIX) {
                refs.push(r.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, refs)),
        Value::Object(map) => map.values().for_each(|v| collect_references(v, refs)),
        _ => {}
    }
}

/// Replaces every `bulkId:<id>` string in `value` with the id its POST created.
fn substitute(value: &mut Value, created: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX).and_then(|r| created.get(r)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, created)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, created)),
        _ => {}
    }
}

/// The order to run the operations in: request order, each POST that an operation references
/// moved just before it. Also which operations take part in a cycle of references.
fn plan(refs: &[Vec<String>], posts: &HashMap<String, usize>) -> (Vec<usize>, Vec<bool>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Visiting,
        Done,
    }
    fn visit(
        i: usize,
        refs: &[Vec<String>],
        posts: &HashMap<String, usize>,
        marks: &mut [Mark],
        order: &mut Vec<usize>,
        cyclic: &mut [bool],
    ) {
        marks[i] = Mark::Visiting;
        for r in &refs[i] {
            let Some(&j) = posts.get(r) else { continue };
            match marks[j] {
                Mark::New => visit(j, refs, posts, marks, order, cyclic),
                Mark::Visiting => {
                    cyclic[i] = true;
                    cyclic[j] = true;
                }
                Mark::Done => {}
            }
        }
        marks[i] = Mark::Done;
        order.push(i);
    }
    let n = refs.len();
    let mut marks = vec![Mark::New; n];
    let mut order = Vec::with_capacity(n);
    let mut cyclic = vec![false; n];
    for i in 0..n {
        if marks[i] == Mark::New {
            visit(i, refs, posts, &mut marks, &mut order, &mut cyclic);
        }
    }
    (order, cyclic)
}

/// What a successful operation produced.
struct Done {
    status: StatusCode,
    id: String,
    etag: String,
}

async fn run(
    grpc: &Grpc,
    cpu: &CpuPool,
    base: &str,
    strict: bool,
    request: BulkRequest,
) -> Vec<Value> {
    let operations = request.operations;
    // The POST declaring each bulkId (the first one, when a bulkId is declared twice).
    let mut posts: HashMap<String, usize> = HashMap::new();
    let mut duplicate = vec![false; operations.len()];
    for (i, op) in operations.iter().enumerate() {
        if let (Ok(action), Some(bulk_id)) = (&op.action, &op.bulk_id)
            && action.method == Method::Post
        {
            if posts.contains_key(bulk_id) {
                duplicate[i] = true;
            } else {
                posts.insert(bulk_id.clone(), i);
            }
        }
    }
    let refs: Vec<Vec<String>> = operations
        .iter()
        .map(|op| op.action.as_ref().map(references).unwrap_or_default())
        .collect();
    let (order, cyclic) = plan(&refs, &posts);

    let mut created: HashMap<String, String> = HashMap::new();
    let mut results: Vec<Option<Value>> = vec![None; operations.len()];
    let mut errors = 0u64;
    for i in order {
        if request.fail_on_errors.is_some_and(|max| errors >= max) {
            break;
        }
        let op = &operations[i];
        let mut location = None;
        let outcome = match &op.action {
            Err(e) => Err(e.clone()),
            Ok(_) if duplicate[i] => Err(ScimError::invalid_syntax(format!(
                "the bulkId \"{}\" is declared by an earlier POST",
                op.bulk_id.as_deref().unwrap_or_default()
            ))),
            Ok(_) if cyclic[i] => Err(ScimError::new(
                StatusCode::CONFLICT,
                None,
                "the operation is part of a circular bulkId reference, which Roster does not \
                 resolve",
            )),
            Ok(action) => match unresolved(&refs[i], &created) {
                Some(r) => Err(ScimError::new(
                    StatusCode::CONFLICT,
                    None,
                    format!(
                        "\"bulkId:{r}\" cannot be resolved: no POST of this request with that \
                         bulkId succeeded"
                    ),
                )),
                None => {
                    let mut action = action.clone();
                    if let Some(data) = &mut action.data {
                        substitute(data, &created);
                    }
                    if let Some(id) = &mut action.id {
                        if let Some(real) =
                            id.strip_prefix(BULK_ID_PREFIX).and_then(|r| created.get(r))
                        {
                            *id = real.clone();
                        }
                        location = Some(format!("{base}/{}/{id}", action.endpoint.as_str()));
                    }
                    let endpoint = action.endpoint;
                    execute(grpc, cpu, strict, action).await.inspect(|done| {
                        location = Some(format!("{base}/{}/{}", endpoint.as_str(), done.id));
                    })
                }
            },
        };
        let mut result = Map::new();
        result.insert("method".into(), op.method.clone());
        if let Some(bulk_id) = &op.bulk_id {
            result.insert("bulkId".into(), bulk_id.clone().into());
        }
        match outcome {
            Ok(done) => {
                if let Some(bulk_id) = &op.bulk_id
                    && posts.get(bulk_id) == Some(&i)
                {
                    created.insert(bulk_id.clone(), done.id.clone());
                }
                if let Some(location) = location {
                    result.insert("location".into(), location.into());
                }
                if !done.etag.is_empty() {
                    result.insert("version".into(), weak_etag(&done.etag).into());
                }
                result.insert("status".into(), done.status.as_u16().to_string().into());
            }
            Err(error) => {
                errors += 1;
                // Every result has a location but a failed POST's (RFC 7644 §3.7.3).
                if let Some(location) = location {
                    result.insert("location".into(), location.into());
                }
                result.insert("status".into(), error.status.as_u16().to_string().into());
                result.insert("response".into(), error.body());
            }
        }
        results[i] = Some(Value::Object(result));
    }
    results.into_iter().flatten().collect()
}

/// The first reference whose POST has not succeeded.
fn unresolved<'a>(refs: &'a [String], created: &HashMap<String, String>) -> Option<&'a str> {
    refs.iter()
        .find(|r| !created.contains_key(*r))
        .map(String::as_str)
}

/// Runs one operation through the function its single-resource route uses.
async fn execute(
    grpc: &Grpc,
    cpu: &CpuPool,
    strict: bool,
    action: Action,
) -> Result<Done, ScimError> {
    let Action {
        method,
        endpoint,
        id,
        data,
        if_match,
    } = action;
    let id = id.unwrap_or_default();
    let data = data.unwrap_or(Value::Null);
    let etag = if_match.clone().unwrap_or_default();
    let view = GroupView::Basic;
    let (status, id, etag) = match (endpoint, method) {
        (Endpoint::Users, Method::Post) => {
            let u = users::create_user(grpc, &data, strict).await?;
            (StatusCode::CREATED, u.id, u.etag)
        }
        (Endpoint::Users, Method::Put) => {
            let u = users::replace_user(grpc, id, &data, if_match, strict).await?;
            (StatusCode::OK, u.id, u.etag)
        }
        (Endpoint::Users, Method::Patch) => {
            let u = users::patch_user(grpc, cpu, id, &data, if_match, strict).await?;
            (StatusCode::OK, u.id, u.etag)
        }
        (Endpoint::Users, Method::Delete) => {
            users::delete_user(grpc, id.clone(), if_match).await?;
            (StatusCode::NO_CONTENT, id, String::new())
        }
        (Endpoint::Groups, Method::Post) => {
            let g = groups::create_group(grpc, &data, view, strict).await?;
            (StatusCode::CREATED, g.id, g.etag)
        }
        (Endpoint::Groups, Method::Put) => {
            let g = groups::replace_group(grpc, &id, &data, etag, view, strict).await?;
            (StatusCode::OK, g.id, g.etag)
        }
        (Endpoint::Groups, Method::Patch) => {
            // As `PATCH /Groups/{id}` answers without attributes asked for: 204.
            let g = groups::patch_group(grpc, id, &data, etag, view).await?;
            (StatusCode::NO_CONTENT, g.id, g.etag)
        }
        (Endpoint::Groups, Method::Delete) => {
            groups::delete_group(grpc, id.clone(), etag).await?;
            (StatusCode::NO_CONTENT, id, String::new())
        }
    };
    Ok(Done { status, id, etag })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(lists: &[&[&str]]) -> Vec<Vec<String>> {
        lists
            .iter()
            .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    fn posts(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn forward_references_run_their_post_first() {
        // 0: PATCH referencing "u" (POST at 2); 1: unrelated; 2: POST u.
        let (order, cyclic) = plan(&refs(&[&["u"], &[], &[]]), &posts(&[("u", 2)]));
        assert_eq!(order, vec![2, 0, 1]);
        assert_eq!(cyclic, vec![false; 3]);
        // Backward references keep request order; unknown ones add no edge.
        let (order, _) = plan(&refs(&[&[], &["u", "nope"]]), &posts(&[("u", 0)]));
        assert_eq!(order, vec![0, 1]);
    }

    #[test]
    fn cycles_are_detected() {
        // 0 → 1 → 0; 2 depends on the cycle (and fails when its POST does); 3 references
        // itself.
        let (order, cyclic) = plan(
            &refs(&[&["b"], &["a"], &["a"], &["c"]]),
            &posts(&[("a", 0), ("b", 1), ("c", 3)]),
        );
        assert_eq!(order.len(), 4);
        assert_eq!(cyclic, vec![true, true, false, true]);
    }

    #[test]
    fn references_are_found_and_substituted() {
        let data = json!({"members": [{"value": "bulkId:u1"}, {"value": "x"}], "n": {"deep": ["bulkId:u2"]}});
        let action = Action {
            method: Method::Patch,
            endpoint: Endpoint::Groups,
            id: Some("bulkId:g".into()),
            data: Some(data.clone()),
            if_match: None,
        };
        assert_eq!(references(&action), vec!["g", "u1", "u2"]);
        let created: HashMap<String, String> = [
            ("u1".to_owned(), "id-1".to_owned()),
            ("u2".to_owned(), "id-2".to_owned()),
        ]
        .into();
        let mut data = data;
        substitute(&mut data, &created);
        assert_eq!(
            data,
            json!({"members": [{"value": "id-1"}, {"value": "x"}], "n": {"deep": ["id-2"]}})
        );
    }

    #[test]
    fn operations_are_validated_one_by_one() {
        let ok = |v: Value| parse_operation(&v).action.unwrap();
        let bad = |v: Value| parse_operation(&v).action.unwrap_err();
        let a = ok(json!({"method": "post", "path": "/Users", "bulkId": "q", "data": {}}));
        assert_eq!(
            (a.method, a.endpoint, a.id),
            (Method::Post, Endpoint::Users, None)
        );
        let a = ok(json!({"method": "DELETE", "path": "/Groups/bulkId:q", "version": "W/\"7\""}));
        assert_eq!(a.id.as_deref(), Some("bulkId:q"));
        assert_eq!(a.if_match.as_deref(), Some("7"));
        for v in [
            json!({"method": "GET", "path": "/Users/1"}),
            json!({"method": "POST", "path": "/Users", "data": {}}),
            json!({"method": "POST", "path": "/Users/1", "bulkId": "q", "data": {}}),
            json!({"method": "PUT", "path": "/Users", "data": {}}),
            json!({"method": "PATCH", "path": "/Users/1"}),
            json!({"method": "DELETE", "path": "/Roles/1"}),
            json!({"method": "DELETE", "path": "/Users/1/x"}),
            json!({"method": "DELETE"}),
            json!("DELETE /Users/1"),
        ] {
            assert_eq!(
                bad(v.clone()).scim_type,
                Some(crate::error::ScimType::InvalidSyntax),
                "{v}"
            );
        }
    }

    #[test]
    fn requests_are_checked_whole() {
        let ops = |n: usize| vec![json!({"method": "DELETE", "path": "/Users/x"}); n];
        let body = |ops: Vec<Value>| json!({"schemas": [BULK_REQUEST_URN], "Operations": ops});
        assert_eq!(parse_request(&body(ops(3)), 3).unwrap().operations.len(), 3);
        let err = parse_request(&body(ops(4)), 3).err().unwrap();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(err.detail.contains("maxOperations"), "{}", err.detail);
        for bad in [
            json!({"Operations": []}),
            json!({"schemas": [BULK_REQUEST_URN]}),
            json!({"schemas": [BULK_REQUEST_URN], "Operations": [], "failOnErrors": 0}),
            json!({"schemas": [BULK_REQUEST_URN], "Operations": [], "failOnErrors": "1"}),
        ] {
            assert_eq!(parse_request(&bad, 3).err().unwrap().status, 400, "{bad}");
        }
    }
}
