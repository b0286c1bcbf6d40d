//! SCIM PATCH (RFC 7644 §3.5.2): the request, and a small engine that applies operations to a
//! resource's JSON document.
//!
//! The engine takes the dialects of real clients: `op` in any letter case (Entra's `Replace`),
//! pathless values whose keys are paths (`"name.givenName"`, URN-qualified names), a value
//! filter with no match on `add`/`replace` creating the entry (Entra), and `remove` with a
//! `value` list removing only those values (Entra's member removal).

use std::collections::HashSet;

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::{PATCH_OP_URN, as_object, check_schemas, coerce_bool, get_ci, key_ci};
use crate::error::ScimError;
use crate::limits::{
    MAX_ATTRIBUTES, MAX_GROUP_PATCH_VALUES, MAX_PATCH_OPERATION_VALUES, MAX_PATCH_OPERATIONS,
    MAX_PATCH_PATH_CHARS, MAX_PATCH_VALUES, count_values, too_many,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Add,
    Replace,
    Remove,
}

/// One PATCH operation. An empty `path` and a `null` value count as absent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PatchOperation {
    pub(crate) op: OpKind,
    pub(crate) path: Option<String>,
    pub(crate) value: Option<Value>,
}

/// The operations of a PatchOp request body for a User (held to [`MAX_PATCH_OPERATION_VALUES`]
/// and [`MAX_PATCH_VALUES`]: the facade applies them to the document).
pub(crate) fn parse_patch_request(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    parse_bounded(body, MAX_PATCH_OPERATION_VALUES, MAX_PATCH_VALUES)
}

/// The operations of a PatchOp request body for a Group: its members become member operations
/// of the service, whose work is linear in the members named, so a full member list (Okta's
/// "replace members") is bounded only by [`MAX_GROUP_PATCH_VALUES`] (and the body limit).
pub(crate) fn parse_group_patch_request(body: &Value) -> Result<Vec<PatchOperation>, ScimError> {
    parse_bounded(body, MAX_GROUP_PATCH_VALUES, MAX_GROUP_PATCH_VALUES)
}

fn parse_bounded(
    body: &Value,
    per_operation: usize,
    per_request: usize,
) -> Result<Vec<PatchOperation>, ScimError> {
    let map = as_object(body, "a PatchOp request")?;
    check_schemas(map, PATCH_OP_URN, &[PATCH_OP_URN])?;
    let Some(Value::Array(ops)) = get_ci(map, "Operations") else {
        return Err(ScimError::invalid_value("'Operations' must be a list"));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_value(
            "'Operations' must contain at least one operation",
        ));
    }
    check_patch_size(ops, per_operation, per_request)?;
    ops.iter().map(parse_operation).collect()
}

/// The limits of `crate::limits` on a PATCH's operations, checked before any of them is parsed
/// or applied (and so before any gRPC call).
fn check_patch_size(
    ops: &[Value],
    per_operation: usize,
    per_request: usize,
) -> Result<(), ScimError> {
    if ops.len() > MAX_PATCH_OPERATIONS {
        return Err(too_many(format!(
            "the PATCH has {} operations, more than the {MAX_PATCH_OPERATIONS} accepted; split it",
            ops.len()
        )));
    }
    let mut total = 0usize;
    for op in ops {
        let Some(map) = op.as_object() else { continue };
        if let Some(Value::String(path)) = get_ci(map, "path")
            && path.chars().count() > MAX_PATCH_PATH_CHARS
        {
            return Err(ScimError::invalid_path(format!(
                "a 'path' is longer than {MAX_PATCH_PATH_CHARS} characters"
            )));
        }
        let Some(value) = get_ci(map, "value") else {
            continue;
        };
        let values = count_values(value, per_operation);
        if values > per_operation {
            return Err(too_many(format!(
                "an operation carries more than {per_operation} values; split it"
            )));
        }
        total += values;
        if total > per_request {
            return Err(too_many(format!(
                "the PATCH carries more than {per_request} values; split it"
            )));
        }
    }
    Ok(())
}

/// The number of values a PATCH request's operations carry (as `crate::limits` counts them).
pub(crate) fn patch_values(ops: &[PatchOperation]) -> usize {
    ops.iter()
        .filter_map(|op| op.value.as_ref())
        .map(|v| count_values(v, MAX_PATCH_VALUES))
        .sum()
}

fn parse_operation(op: &Value) -> Result<PatchOperation, ScimError> {
    let map = op
        .as_object()
        .ok_or_else(|| ScimError::invalid_value("each operation must be an object"))?;
    let kind = match get_ci(map, "op").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("add") => OpKind::Add,
        Some(s) if s.eq_ignore_ascii_case("replace") => OpKind::Replace,
        Some(s) if s.eq_ignore_ascii_case("remove") => OpKind::Remove,
        _ => {
            return Err(ScimError::invalid_value(
                "'op' must be \"add\", \"replace\" or \"remove\"",
            ));
        }
    };
    let path = match get_ci(map, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.trim().is_empty() => None,
        Some(Value::String(p)) => Some(p.trim().to_owned()),
        Some(_) => return Err(ScimError::invalid_path("'path' must be a string")),
    };
    let value = get_ci(map, "value").filter(|v| !v.is_null()).cloned();
    if kind != OpKind::Remove && value.is_none() && path.is_none() {
        return Err(ScimError::invalid_value(
            "an add or replace operation needs a 'value'",
        ));
    }
    Ok(PatchOperation {
        op: kind,
        path,
        value,
    })
}

/// What a resource type's documents look like to the engine.
pub(crate) struct ResourceSchema {
    /// The core schema URN; attribute paths qualified with it are plain attributes.
    pub(crate) core: &'static str,
    /// Extension URNs; their attributes live in an object under the URN.
    pub(crate) extensions: &'static [&'static str],
    /// Attributes a client may not change (400 mutability when targeted by a path; skipped
    /// silently as keys of a pathless value).
    pub(crate) read_only: &'static [&'static str],
}

/// Where an operation lands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// A whole extension object (path = the extension URN).
    Extension(&'static str),
    /// `[ext:]name[.sub]`
    Attr {
        ext: Option<&'static str>,
        name: String,
        sub: Option<String>,
    },
    /// `[ext:]name[filter][.sub]`
    Filtered {
        ext: Option<&'static str>,
        name: String,
        filter: ValFilter,
        sub: Option<String>,
    },
}

impl ResourceSchema {
    fn extension(&self, urn: &str) -> Option<&'static str> {
        self.extensions
            .iter()
            .find(|e| e.eq_ignore_ascii_case(urn))
            .copied()
    }

    /// Resolves a PATCH path (or a key of a pathless value) against this schema.
    pub(crate) fn resolve(&self, path: &str) -> Result<Target, ScimError> {
        let path = path.trim();
        if let Some(ext) = self.extension(path) {
            return Ok(Target::Extension(ext));
        }
        let parsed: PatchPath = path.parse().map_err(|_| {
            ScimError::invalid_path(format!("'{path}' is not a valid attribute path"))
        })?;
        let (attr, filter, trailing) = match parsed {
            PatchPath::Attr(attr) => (attr, None, None),
            PatchPath::Value(vp) => (vp.attr, Some(vp.filter), vp.sub_attr),
        };
        let ext = self.qualifier(&attr, path)?;
        let AttrPath { name, sub_attr, .. } = attr;
        match (filter, sub_attr, trailing) {
            (None, sub, _) => Ok(Target::Attr { ext, name, sub }),
            (Some(filter), None, sub) => Ok(Target::Filtered {
                ext,
                name,
                filter,
                sub,
            }),
            (Some(_), Some(_), _) => Err(ScimError::invalid_path(format!(
                "'{path}' is not a valid attribute path"
            ))),
        }
    }

    fn qualifier(&self, attr: &AttrPath, path: &str) -> Result<Option<&'static str>, ScimError> {
        match attr.uri.as_deref() {
            None => Ok(None),
            Some(uri) if uri.eq_ignore_ascii_case(self.core) => Ok(None),
            Some(uri) => self.extension(uri).map(Some).ok_or_else(|| {
                ScimError::invalid_path(format!("'{path}' names an unknown schema"))
            }),
        }
    }

    fn is_read_only(&self, name: &str) -> bool {
        self.read_only.iter().any(|r| r.eq_ignore_ascii_case(name))
    }
}

/// Applies `ops` in order to `doc`. On error `doc` may be half-changed: discard it.
pub(crate) fn apply_patch(
    doc: &mut Map<String, Value>,
    ops: &[PatchOperation],
    schema: &ResourceSchema,
) -> Result<(), ScimError> {
    for op in ops {
        match (&op.path, op.op) {
            (None, OpKind::Remove) => {
                return Err(ScimError::no_target("a remove operation needs a 'path'"));
            }
            (None, kind) => {
                let Some(Value::Object(values)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "an operation without 'path' needs an object 'value'",
                    ));
                };
                if values.len() > MAX_ATTRIBUTES {
                    return Err(ScimError::invalid_value(format!(
                        "an operation without 'path' names more than the {MAX_ATTRIBUTES} \
                         attributes a resource may have"
                    )));
                }
                for (key, value) in values {
                    if schema.is_read_only(key) {
                        continue;
                    }
                    let target = schema.resolve(key)?;
                    apply_target(doc, &target, kind, Some(value))?;
                }
            }
            (Some(path), kind) => {
                let target = schema.resolve(path)?;
                if let Target::Attr {
                    ext: None, name, ..
                }
                | Target::Filtered {
                    ext: None, name, ..
                } = &target
                    && schema.is_read_only(name)
                {
                    return Err(ScimError::mutability(format!("'{name}' cannot be changed")));
                }
                apply_target(doc, &target, kind, op.value.as_ref())?;
            }
        }
    }
    Ok(())
}

fn apply_target(
    doc: &mut Map<String, Value>,
    target: &Target,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let value = value.filter(|v| !v.is_null());
    match target {
        Target::Extension(urn) => match (kind, value) {
            (OpKind::Remove, _) | (_, None) => {
                remove_ci(doc, urn);
                Ok(())
            }
            (_, Some(Value::Object(values))) => {
                let ext = object_entry(doc, urn)?;
                for (k, v) in values {
                    set_attr(ext, k, kind, v)?;
                }
                Ok(())
            }
            (_, Some(_)) => Err(ScimError::invalid_value(format!(
                "the value of '{urn}' must be an object"
            ))),
        },
        Target::Attr { ext, name, sub } => {
            // add/replace of `null` removes, like remove.
            let removing = kind == OpKind::Remove || value.is_none();
            let Some(parent) = parent(doc, *ext, removing)? else {
                return Ok(());
            };
            match (value.filter(|_| !removing), sub) {
                (None, None) => remove_attr(parent, name, value),
                (None, Some(sub)) => remove_sub_attr(parent, name, sub),
                (Some(value), None) => return set_attr(parent, name, kind, value),
                (Some(value), Some(sub)) => return set_sub_attr(parent, name, sub, kind, value),
            }
            Ok(())
        }
        Target::Filtered {
            ext,
            name,
            filter,
            sub,
        } => {
            let Some(parent) = parent(doc, *ext, kind == OpKind::Remove)? else {
                return Ok(());
            };
            apply_filtered(parent, name, filter, sub.as_deref(), kind, value)
        }
    }
}

/// The object holding a target's attribute: the document or an extension object (created
/// unless `lookup_only`; `None` when it is absent and `lookup_only`).
fn parent<'a>(
    doc: &'a mut Map<String, Value>,
    ext: Option<&'static str>,
    lookup_only: bool,
) -> Result<Option<&'a mut Map<String, Value>>, ScimError> {
    let Some(urn) = ext else {
        return Ok(Some(doc));
    };
    if lookup_only && key_ci(doc, urn).is_none() {
        return Ok(None);
    }
    object_entry(doc, urn).map(Some)
}

/// The object under `key` (matched without case), created when absent or `null`.
fn object_entry<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Map<String, Value>, ScimError> {
    let key = match key_ci(map, key) {
        Some(key) => key,
        None => {
            room_for_one_more(map, key)?;
            key.to_owned()
        }
    };
    let entry = map
        .entry(key.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    entry
        .as_object_mut()
        .ok_or_else(|| ScimError::invalid_path(format!("'{key}' is not a complex attribute")))
}

fn remove_ci(map: &mut Map<String, Value>, name: &str) -> Option<Value> {
    key_ci(map, name).and_then(|k| map.shift_remove(&k))
}

/// add/replace of a whole attribute: complex values merge sub-attributes (RFC 7644 §3.5.2.1,
/// §3.5.2.3); `add` appends to a multi-valued attribute, `replace` replaces it.
fn set_attr(
    map: &mut Map<String, Value>,
    name: &str,
    kind: OpKind,
    value: &Value,
) -> Result<(), ScimError> {
    if value.is_null() {
        remove_ci(map, name);
        return Ok(());
    }
    let key = match key_ci(map, name) {
        Some(key) => key,
        None => {
            room_for_one_more(map, name)?;
            name.to_owned()
        }
    };
    let existing = map.get_mut(&key);
    match (existing, value) {
        (Some(Value::Object(current)), Value::Object(values)) => {
            for (k, v) in values {
                set_attr(current, k, OpKind::Replace, v)?;
            }
        }
        // Values already present are not added again (RFC 7644 §3.5.2.1). One hash set of the
        // values present: linear in the values, where a `contains` per value was quadratic.
        (Some(Value::Array(current)), _) if kind == OpKind::Add => {
            let items = match value {
                Value::Array(items) => items.as_slice(),
                single => std::slice::from_ref(single),
            };
            let mut present: HashSet<&Value> = current.iter().collect();
            let fresh: Vec<Value> = items
                .iter()
                .filter(|item| present.insert(*item))
                .cloned()
                .collect();
            current.extend(fresh);
        }
        (Some(Value::Array(current)), Value::Object(_)) => *current = vec![value.clone()],
        _ => {
            map.insert(key, value.clone());
        }
    }
    Ok(())
}

/// 400 `invalidValue` when `map` already has [`MAX_ATTRIBUTES`] members, before `name` is
/// added. Every lookup in an object scans it for a key of any letter case: bounding the width
/// of the objects bounds that scan, and so the work of a PATCH to its values times this bound.
fn room_for_one_more(map: &Map<String, Value>, name: &str) -> Result<(), ScimError> {
    if map.len() >= MAX_ATTRIBUTES {
        return Err(ScimError::invalid_value(format!(
            "cannot add '{name}': an object of the resource may have at most {MAX_ATTRIBUTES} \
             attributes"
        )));
    }
    Ok(())
}

/// remove of a whole attribute; with a value list on a multi-valued attribute, only the values
/// listed (matched by their `value` sub-attribute, else by equality).
fn remove_attr(map: &mut Map<String, Value>, name: &str, values: Option<&Value>) {
    let Some(key) = key_ci(map, name) else {
        return;
    };
    if let (Some(Value::Array(current)), Some(values)) = (map.get_mut(&key), values) {
        let doomed: HashSet<ValueKey<'_>> = match values {
            Value::Array(items) => items.iter().map(ValueKey::of).collect(),
            single => HashSet::from([ValueKey::of(single)]),
        };
        current.retain(|item| !doomed.contains(&ValueKey::of(item)));
        if !current.is_empty() {
            return;
        }
    }
    map.shift_remove(&key);
}

/// What identifies a value of a multi-valued attribute for a `remove` with a value list: its
/// `value` sub-attribute when it has one, else the whole value; strings without ASCII letter
/// case. Two values name the same one exactly when their keys are equal, so the values to
/// remove go in one hash set (linear, where comparing each value with each was quadratic).
/// (Two equal objects have the same keys, so either both have a `value` sub-attribute or
/// neither does.)
#[derive(Debug, PartialEq, Eq, Hash)]
enum ValueKey<'a> {
    Sub(Scalar<'a>),
    Whole(Scalar<'a>),
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Scalar<'a> {
    /// A string, ASCII-lower-cased.
    Text(String),
    Other(&'a Value),
}

impl<'a> ValueKey<'a> {
    fn of(value: &'a Value) -> Self {
        let scalar = |v: &'a Value| match v {
            Value::String(s) => Scalar::Text(s.to_ascii_lowercase()),
            other => Scalar::Other(other),
        };
        match value.as_object().and_then(|m| get_ci(m, "value")) {
            Some(sub) => ValueKey::Sub(scalar(sub)),
            None => ValueKey::Whole(scalar(value)),
        }
    }
}

fn set_sub_attr(
    map: &mut Map<String, Value>,
    name: &str,
    sub: &str,
    kind: OpKind,
    value: &Value,
) -> Result<(), ScimError> {
    if key_ci(map, name).is_some_and(|k| map[&k].is_array()) {
        return Err(ScimError::invalid_path(format!(
            "'{name}' is multi-valued: select values with a filter, e.g. {name}[type eq \"work\"].{sub}"
        )));
    }
    set_attr(object_entry(map, name)?, sub, kind, value)
}

fn remove_sub_attr(map: &mut Map<String, Value>, name: &str, sub: &str) {
    let Some(key) = key_ci(map, name) else {
        return;
    };
    match map.get_mut(&key) {
        Some(Value::Object(inner)) => {
            remove_ci(inner, sub);
        }
        Some(Value::Array(items)) => {
            for item in items.iter_mut() {
                if let Value::Object(inner) = item {
                    remove_ci(inner, sub);
                }
            }
        }
        _ => {}
    }
}

/// An operation on the values of a multi-valued attribute that match `filter`.
fn apply_filtered(
    map: &mut Map<String, Value>,
    name: &str,
    filter: &ValFilter,
    sub: Option<&str>,
    kind: OpKind,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let key = key_ci(map, name).unwrap_or_else(|| name.to_owned());
    if map.get(&key).is_none_or(Value::is_null) {
        if kind == OpKind::Remove || value.is_none() {
            return Ok(());
        }
        if !map.contains_key(&key) {
            room_for_one_more(map, &key)?;
        }
        map.insert(key.clone(), Value::Array(Vec::new()));
    }
    let Some(Value::Array(items)) = map.get_mut(&key) else {
        return Err(ScimError::invalid_path(format!(
            "'{name}' is not multi-valued"
        )));
    };
    let matching: Vec<usize> = (0..items.len())
        .filter(|&i| matches(filter, &items[i]))
        .collect();
    match (kind, value) {
        (OpKind::Remove, _) | (_, None) => {
            match sub {
                None => {
                    for &i in matching.iter().rev() {
                        items.remove(i);
                    }
                }
                Some(sub) => {
                    for &i in &matching {
                        if let Value::Object(item) = &mut items[i] {
                            remove_ci(item, sub);
                        }
                    }
                }
            }
            if items.is_empty() {
                map.shift_remove(&key);
            }
            Ok(())
        }
        (_, Some(value)) => {
            if matching.is_empty() {
                // Entra: a filter that matches nothing on add/replace creates the value.
                let mut item = filter_template(filter).ok_or_else(|| {
                    ScimError::no_target(format!("no value of '{name}' matches the filter"))
                })?;
                merge_into(&mut item, sub, value)?;
                items.push(Value::Object(item));
                return Ok(());
            }
            for &i in &matching {
                let Value::Object(item) = &mut items[i] else {
                    return Err(ScimError::invalid_path(format!(
                        "the values of '{name}' are not complex"
                    )));
                };
                merge_into(item, sub, value)?;
            }
            Ok(())
        }
    }
}

fn merge_into(
    item: &mut Map<String, Value>,
    sub: Option<&str>,
    value: &Value,
) -> Result<(), ScimError> {
    match (sub, value) {
        (Some(sub), v) => set_attr(item, sub, OpKind::Replace, v)?,
        (None, Value::Object(values)) => {
            for (k, v) in values {
                set_attr(item, k, OpKind::Replace, v)?;
            }
        }
        (None, _) => {
            return Err(ScimError::invalid_value(
                "the value for a filtered path without a sub-attribute must be an object",
            ));
        }
    }
    Ok(())
}

/// The value a filter of `eq` comparisons joined by `and` describes (`type eq "work"` →
/// `{"type":"work"}`); `None` for any other filter.
fn filter_template(filter: &ValFilter) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut stack = vec![filter];
    while let Some(f) = stack.pop() {
        match f {
            ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, value))
                if path.uri.is_none() && path.sub_attr.is_none() =>
            {
                let v = match value {
                    CompValue::Str(s) => Value::String(s.clone()),
                    CompValue::True => Value::Bool(true),
                    CompValue::False => Value::Bool(false),
                    CompValue::Number(n) => Value::Number(n.clone()),
                    CompValue::Null => return None,
                };
                out.insert(path.name.clone(), v);
            }
            ValFilter::And(items) => stack.extend(items.iter().rev()),
            _ => return None,
        }
    }
    Some(out)
}

/// Whether one value of a multi-valued attribute matches a value filter. Strings compare
/// without letter case (the sub-attributes Roster keeps are all `caseExact: false`).
pub(crate) fn matches(filter: &ValFilter, item: &Value) -> bool {
    match filter {
        ValFilter::Attr(AttrExp::Present(path)) => lookup(item, path).is_some_and(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        }),
        ValFilter::Attr(AttrExp::Comparison(path, op, value)) => {
            compare(lookup(item, path), op, value)
        }
        ValFilter::Not(inner) => !matches(inner, item),
        ValFilter::And(items) => items.iter().all(|f| matches(f, item)),
        ValFilter::Or(items) => items.iter().any(|f| matches(f, item)),
    }
}

fn lookup<'a>(item: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let map = item.as_object()?;
    let value = get_ci(map, &path.name)?;
    match &path.sub_attr {
        None => Some(value),
        Some(sub) => get_ci(value.as_object()?, sub),
    }
}

fn compare(actual: Option<&Value>, op: &CompareOp, expected: &CompValue) -> bool {
    if let Some(Value::Array(values)) = actual {
        return values.iter().any(|v| compare(Some(v), op, expected));
    }
    match expected {
        CompValue::Null => {
            let absent = actual.is_none_or(Value::is_null);
            match op {
                CompareOp::Eq => absent,
                CompareOp::Ne => !absent,
                _ => false,
            }
        }
        CompValue::True | CompValue::False => {
            let wanted = matches!(expected, CompValue::True);
            let got = actual.and_then(coerce_bool);
            match op {
                CompareOp::Eq => got == Some(wanted),
                CompareOp::Ne => got != Some(wanted),
                _ => false,
            }
        }
        CompValue::Number(n) => {
            let (Some(want), Some(got)) = (n.as_f64(), actual.and_then(as_number)) else {
                return matches!(op, CompareOp::Ne);
            };
            match op {
                CompareOp::Eq => got == want,
                CompareOp::Ne => got != want,
                CompareOp::Gt => got > want,
                CompareOp::Ge => got >= want,
                CompareOp::Lt => got < want,
                CompareOp::Le => got <= want,
                _ => false,
            }
        }
        CompValue::Str(want) => {
            let Some(got) = actual.and_then(as_text) else {
                return matches!(op, CompareOp::Ne);
            };
            let (got, want) = (got.to_lowercase(), want.to_lowercase());
            match op {
                CompareOp::Eq => got == want,
                CompareOp::Ne => got != want,
                CompareOp::Co => got.contains(&want),
                CompareOp::Sw => got.starts_with(&want),
                CompareOp::Ew => got.ends_with(&want),
                CompareOp::Gt => got > want,
                CompareOp::Ge => got >= want,
                CompareOp::Lt => got < want,
                CompareOp::Le => got <= want,
            }
        }
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::limits::{
        MAX_PATCH_OPERATION_VALUES, MAX_PATCH_OPERATIONS, MAX_PATCH_PATH_CHARS, MAX_PATCH_VALUES,
    };
    use crate::scim::{ENTERPRISE_USER_URN, ROSTER_USER_URN, USER_URN};
    use serde_json::json;

    const SCHEMA: ResourceSchema = ResourceSchema {
        core: USER_URN,
        extensions: &[ENTERPRISE_USER_URN, ROSTER_USER_URN],
        read_only: &["id", "meta", "groups", "schemas"],
    };

    fn patch(ops: Value) -> Vec<PatchOperation> {
        parse_patch_request(&json!({"schemas": [PATCH_OP_URN], "Operations": ops})).unwrap()
    }

    fn apply(doc: Value, ops: Value) -> Result<Value, ScimError> {
        let mut doc = doc.as_object().unwrap().clone();
        apply_patch(&mut doc, &patch(ops), &SCHEMA)?;
        Ok(Value::Object(doc))
    }

    fn user() -> Value {
        json!({
            "schemas": [USER_URN],
            "id": "u-1",
            "userName": "ada",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "active": true,
            "emails": [
                {"value": "ada@work.example", "type": "work", "primary": true},
                {"value": "ada@home.example", "type": "home"}
            ]
        })
    }

    #[test]
    fn parses_ops_in_any_case() {
        let ops = patch(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "ADD", "path": "title", "value": "x"},
            {"op": "remove", "path": "title"},
            {"op": "replace", "path": "", "value": {"active": true}},
            {"op": "remove", "path": "x", "value": null}
        ]));
        assert_eq!(ops[0].op, OpKind::Replace);
        assert_eq!(ops[1].op, OpKind::Add);
        assert_eq!(ops[2].op, OpKind::Remove);
        assert_eq!(ops[3].path, None);
        assert_eq!(ops[4].value, None);
    }

    #[test]
    fn rejects_bad_requests() {
        let bad = [
            json!({"Operations": [{"op": "add", "path": "x", "value": 1}]}),
            json!({"schemas": [PATCH_OP_URN]}),
            json!({"schemas": [PATCH_OP_URN], "Operations": []}),
            json!({"schemas": [PATCH_OP_URN], "Operations": [{"op": "move", "path": "x"}]}),
            json!({"schemas": [PATCH_OP_URN], "Operations": [{"op": "add"}]}),
        ];
        for body in bad {
            assert!(parse_patch_request(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn entra_replace_on_filter_with_no_match_creates_the_value() {
        let doc = json!({"schemas": [USER_URN], "userName": "x"});
        let out = apply(
            doc,
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "x@work"}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{"type": "work", "value": "x@work"}]));
    }

    #[test]
    fn filtered_replace_changes_only_matching_values() {
        let out = apply(user(), json!([{"op": "replace", "path": "emails[type eq \"WORK\"].value", "value": "new@work"}])).unwrap();
        assert_eq!(
            out["emails"][0],
            json!({"value": "new@work", "type": "work", "primary": true})
        );
        assert_eq!(out["emails"][1]["value"], "ada@home.example");
    }

    #[test]
    fn filters_evaluate_booleans_and_logic() {
        let out = apply(
            user(),
            json!([{"op": "remove", "path": "emails[primary eq true and not (type eq \"home\")]"}]),
        )
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([{"value": "ada@home.example", "type": "home"}])
        );
        let out = apply(
            user(),
            json!([{"op": "remove", "path": "emails[type eq \"work\" or type eq \"home\"]"}]),
        )
        .unwrap();
        assert!(out.get("emails").is_none());
        let out = apply(
            user(),
            json!([{"op": "remove", "path": "emails[value ew \"home.example\"].type"}]),
        )
        .unwrap();
        assert_eq!(out["emails"][1], json!({"value": "ada@home.example"}));
        let out = apply(
            user(),
            json!([{"op": "remove", "path": "emails[display pr]"}]),
        )
        .unwrap();
        assert_eq!(out["emails"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn filter_without_equality_template_is_no_target() {
        let err = apply(
            user(),
            json!([{"op": "replace", "path": "emails[type sw \"x\"].value", "value": "v"}]),
        )
        .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
    }

    #[test]
    fn pathless_replace_with_dotted_and_urn_keys() {
        let out = apply(
            user(),
            json!([{"op": "replace", "value": {
                "name.givenName": "Augusta",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
                "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "A. Ada",
                "id": "ignored",
                "active": false
            }}]),
        )
        .unwrap();
        assert_eq!(
            out["name"],
            json!({"givenName": "Augusta", "familyName": "Lovelace"})
        );
        assert_eq!(out[ENTERPRISE_USER_URN], json!({"employeeNumber": "42"}));
        assert_eq!(out["displayName"], "A. Ada");
        assert_eq!(out["id"], "u-1");
        assert_eq!(out["active"], false);
    }

    #[test]
    fn complex_values_merge_and_multi_valued_add_appends() {
        let out = apply(
            user(),
            json!([
                {"op": "replace", "path": "name", "value": {"middleName": "King"}},
                {"op": "add", "path": "emails", "value": [{"value": "x@other", "type": "other"}]},
                {"op": "add", "path": "phoneNumbers", "value": [{"value": "+1"}]},
                {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m-1"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out["name"],
            json!({"givenName": "Ada", "familyName": "Lovelace", "middleName": "King"})
        );
        assert_eq!(out["emails"].as_array().unwrap().len(), 3);
        assert_eq!(out["phoneNumbers"], json!([{"value": "+1"}]));
        assert_eq!(
            out[ENTERPRISE_USER_URN],
            json!({"manager": {"value": "m-1"}})
        );
        // replace on a multi-valued attribute replaces the list.
        let out = apply(
            user(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "only@one"}]}]),
        )
        .unwrap();
        assert_eq!(out["emails"], json!([{"value": "only@one"}]));
    }

    #[test]
    fn remove_with_value_list_removes_only_those() {
        let out = apply(
            user(),
            json!([{"op": "Remove", "path": "emails", "value": [{"value": "ADA@work.example"}]}]),
        )
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([{"value": "ada@home.example", "type": "home"}])
        );
        let out = apply(user(), json!([{"op": "remove", "path": "emails"}])).unwrap();
        assert!(out.get("emails").is_none());
    }

    #[test]
    fn remove_of_extension_and_sub_attributes() {
        let mut doc = user();
        doc[ENTERPRISE_USER_URN] = json!({"employeeNumber": "1", "department": "R&D"});
        let out = apply(
            doc.clone(),
            json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}]),
        )
        .unwrap();
        assert_eq!(out[ENTERPRISE_USER_URN], json!({"employeeNumber": "1"}));
        let out = apply(doc, json!([{"op": "remove", "path": ENTERPRISE_USER_URN}])).unwrap();
        assert!(out.get(ENTERPRISE_USER_URN).is_none());
        let out = apply(user(), json!([{"op": "remove", "path": "name.givenName"}])).unwrap();
        assert_eq!(out["name"], json!({"familyName": "Lovelace"}));
    }

    #[test]
    fn errors_have_the_right_scim_type() {
        let cases = [
            (json!([{"op": "remove"}]), ScimType::NoTarget),
            (
                json!([{"op": "replace", "path": "emails[type eq", "value": 1}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "urn:example:x:foo", "value": 1}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "path": "id", "value": "x"}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
                ScimType::Mutability,
            ),
            (
                json!([{"op": "replace", "path": "emails.value", "value": "x"}]),
                ScimType::InvalidPath,
            ),
            (
                json!([{"op": "replace", "value": "not an object"}]),
                ScimType::InvalidValue,
            ),
        ];
        for (ops, scim_type) in cases {
            let err = apply(user(), ops.clone()).unwrap_err();
            assert_eq!(err.scim_type, Some(scim_type), "{ops}");
        }
    }

    #[test]
    fn add_skips_values_already_present_however_their_keys_are_ordered() {
        let doc = json!({"schemas": [USER_URN], "userName": "x",
            "tags": ["a", {"k": 1, "v": 2}]});
        let out = apply(
            doc,
            json!([{"op": "add", "path": "tags",
                "value": ["a", {"v": 2, "k": 1}, "b", "b", {"k": 1}]}]),
        )
        .unwrap();
        assert_eq!(out["tags"], json!(["a", {"k": 1, "v": 2}, "b", {"k": 1}]));
    }

    #[test]
    fn remove_by_value_matches_the_value_sub_attribute_without_case() {
        let doc = json!({"schemas": [USER_URN], "userName": "x",
            "tags": ["A", 1, {"value": "X", "display": "d"}, {"display": "only"}, "1"]});
        let out = apply(
            doc,
            json!([{"op": "remove", "path": "tags",
                "value": ["a", {"value": "x"}, {"display": "only"}, {"value": 1}]}]),
        )
        .unwrap();
        // `{"value": 1}` names a value whose `value` is 1; the number 1 itself has none.
        assert_eq!(out["tags"], json!([1, "1"]));
    }

    /// With a `contains` per value (quadratic), these took tens of seconds; linear, well under
    /// a second even unoptimised. The bound is generous: what is tested is that it finishes.
    #[test]
    fn adding_and_removing_many_values_is_linear() {
        const N: usize = 20_000;
        let existing: Vec<Value> = (0..N).map(|i| json!(format!("v{i}"))).collect();
        let added: Vec<Value> = (N / 2..N + N / 2).map(|i| json!(format!("v{i}"))).collect();
        let doc = json!({"schemas": [USER_URN], "userName": "x", "tags": existing});
        let started = std::time::Instant::now();
        let mut doc = doc.as_object().unwrap().clone();
        let add = PatchOperation {
            op: OpKind::Add,
            path: Some("tags".into()),
            value: Some(Value::Array(added.clone())),
        };
        apply_patch(&mut doc, &[add], &SCHEMA).unwrap();
        assert_eq!(doc["tags"].as_array().unwrap().len(), N + N / 2);
        let remove = PatchOperation {
            op: OpKind::Remove,
            path: Some("tags".into()),
            value: Some(Value::Array(
                added
                    .iter()
                    .map(|v| json!({"value": v}))
                    .chain(added.clone())
                    .collect(),
            )),
        };
        apply_patch(&mut doc, &[remove], &SCHEMA).unwrap();
        assert_eq!(doc["tags"].as_array().unwrap().len(), N / 2);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn objects_are_bounded_in_width_while_the_patch_applies() {
        use crate::limits::MAX_ATTRIBUTES;
        let keys = |n: usize| -> Map<String, Value> {
            (0..n).map(|i| (format!("k{i}"), json!(i))).collect()
        };
        // A pathless value naming more attributes than a resource may have.
        let err = apply(
            user(),
            json!([{"op": "replace", "value": keys(MAX_ATTRIBUTES + 1)}]),
        )
        .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
        // Growing the document past the bound, one attribute at a time.
        let width = user().as_object().unwrap().len();
        let ops: Vec<Value> = (0..=MAX_ATTRIBUTES - width)
            .map(|i| json!({"op": "add", "path": format!("x{i}"), "value": 1}))
            .collect();
        let err = apply(user(), json!(ops)).unwrap_err();
        assert!(
            err.detail.contains(&format!("x{}", MAX_ATTRIBUTES - width)),
            "{}",
            err.detail
        );
        let out = apply(user(), json!(ops[..ops.len() - 1])).unwrap();
        assert_eq!(out.as_object().unwrap().len(), MAX_ATTRIBUTES);
        // Into an extension object, or a complex value: the same bound.
        let err = apply(
            user(),
            json!([{"op": "add", "path": ENTERPRISE_USER_URN, "value": keys(MAX_ATTRIBUTES + 1)}]),
        )
        .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
    }

    fn body_with(ops: Vec<Value>) -> Value {
        json!({"schemas": [PATCH_OP_URN], "Operations": ops})
    }

    fn add_values(n: usize) -> Value {
        json!({"op": "add", "path": "tags", "value": vec![json!("v"); n]})
    }

    #[test]
    fn operations_per_request_are_bounded() {
        let op = json!({"op": "replace", "path": "title", "value": "t"});
        assert!(parse_patch_request(&body_with(vec![op.clone(); MAX_PATCH_OPERATIONS])).is_ok());
        let err = parse_patch_request(&body_with(vec![op; MAX_PATCH_OPERATIONS + 1])).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
    }

    #[test]
    fn values_per_operation_and_per_request_are_bounded() {
        let at = add_values(MAX_PATCH_OPERATION_VALUES);
        assert!(parse_patch_request(&body_with(vec![at.clone()])).is_ok());
        let err = parse_patch_request(&body_with(vec![add_values(MAX_PATCH_OPERATION_VALUES + 1)]))
            .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        assert!(err.detail.contains("an operation"), "{}", err.detail);
        // Nested values count: 5 001 members of two values each.
        let members: Vec<Value> = (0..MAX_PATCH_OPERATION_VALUES / 2 + 1)
            .map(|i| json!({"value": i.to_string()}))
            .collect();
        let err = parse_patch_request(&body_with(vec![
            json!({"op": "add", "path": "members", "value": members}),
        ]))
        .unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        // Together: each operation within its bound, the request over its own.
        let n = MAX_PATCH_VALUES / MAX_PATCH_OPERATION_VALUES;
        assert!(parse_patch_request(&body_with(vec![at.clone(); n])).is_ok());
        let mut ops = vec![at; n];
        ops.push(add_values(1));
        let err = parse_patch_request(&body_with(ops)).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::TooMany));
        assert!(err.detail.contains("the PATCH"), "{}", err.detail);
    }

    #[test]
    fn long_paths_are_refused() {
        let filter = |len: usize| format!("emails[value eq \"{}\"]", "x".repeat(len));
        let path = filter(MAX_PATCH_PATH_CHARS - filter(0).len());
        assert_eq!(path.len(), MAX_PATCH_PATH_CHARS);
        let op = |path: String| json!({"op": "remove", "path": path});
        assert!(parse_patch_request(&body_with(vec![op(path.clone())])).is_ok());
        let err = parse_patch_request(&body_with(vec![op(format!("{path}x"))])).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
    }

    #[test]
    fn case_insensitive_attribute_names() {
        let out = apply(
            user(),
            json!([{"op": "replace", "path": "NAME.GIVENNAME", "value": "A"}]),
        )
        .unwrap();
        assert_eq!(out["name"]["givenName"], "A");
        let out = apply(
            user(),
            json!([{"op": "replace", "path": "Emails[Type eq \"home\"].Value", "value": "h"}]),
        )
        .unwrap();
        assert_eq!(out["emails"][1]["value"], "h");
    }
}
