//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) applied to rendered resources.

use serde_json::{Map, Value};

use crate::extract::Params;

/// Attributes returned whatever the client asks.
const ALWAYS: [&str; 2] = ["id", "schemas"];

/// One attribute reference: `[urn:]name[.sub]`, or a whole extension (`name` = the URN).
#[derive(Debug, Clone, PartialEq)]
struct AttrRef {
    ext: Option<String>,
    name: String,
    sub: Option<String>,
}

/// The projection a request asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Projection {
    attributes: Vec<AttrRef>,
    excluded: Vec<AttrRef>,
}

impl Projection {
    /// From the query's `attributes` and `excludedAttributes` (comma-separated lists); `core` is
    /// the resource's core URN, `extensions` its extension URNs.
    pub(crate) fn from_params(params: &Params, core: &str, extensions: &[&str]) -> Self {
        Self::new(
            &attribute_list(params, "attributes"),
            &attribute_list(params, "excludedAttributes"),
            core,
            extensions,
        )
    }

    /// From attribute references, one per item, trimmed and non-empty (as a `ListQuery` carries
    /// them, from the query string or a SearchRequest body).
    pub(crate) fn new(
        attributes: &[String],
        excluded: &[String],
        core: &str,
        extensions: &[&str],
    ) -> Self {
        let parse = |list: &[String]| list.iter().map(|s| attr_ref(s, core, extensions)).collect();
        Self {
            attributes: parse(attributes),
            excluded: parse(excluded),
        }
    }

    /// Whether the request names no projection at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether the top-level attribute `name` would be returned (at least in part).
    pub(crate) fn returns(&self, name: &str) -> bool {
        let named = |r: &AttrRef| r.ext.is_none() && r.name.eq_ignore_ascii_case(name);
        if self.excluded.iter().any(|r| named(r) && r.sub.is_none()) {
            return false;
        }
        self.attributes.is_empty() || self.attributes.iter().any(named)
    }

    /// Projects one rendered resource.
    pub(crate) fn apply(&self, doc: &mut Value) {
        let Value::Object(map) = doc else {
            return;
        };
        if !self.attributes.is_empty() {
            let kept = std::mem::take(map)
                .into_iter()
                .filter_map(|(key, value)| self.include(&key, value).map(|v| (key, v)))
                .collect();
            *map = kept;
        }
        for r in &self.excluded {
            exclude(map, r);
        }
    }

    fn include(&self, key: &str, value: Value) -> Option<Value> {
        if ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(key)) {
            return Some(value);
        }
        let is_extension = key.starts_with("urn:");
        let refs: Vec<&AttrRef> = self
            .attributes
            .iter()
            .filter(|r| {
                if is_extension {
                    r.ext
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(key))
                        || (r.ext.is_none() && r.name.eq_ignore_ascii_case(key))
                } else {
                    r.ext.is_none() && r.name.eq_ignore_ascii_case(key)
                }
            })
            .collect();
        if refs.is_empty() {
            return None;
        }
        if is_extension {
            // The whole extension, or the attributes named inside it.
            if refs.iter().any(|r| r.ext.is_none()) {
                return Some(value);
            }
            let Value::Object(inner) = value else {
                return Some(value);
            };
            let kept: Map<String, Value> = inner
                .into_iter()
                .filter(|(k, _)| refs.iter().any(|r| r.name.eq_ignore_ascii_case(k)))
                .collect();
            return Some(Value::Object(kept));
        }
        if refs.iter().any(|r| r.sub.is_none()) {
            return Some(value);
        }
        let subs: Vec<&str> = refs.iter().filter_map(|r| r.sub.as_deref()).collect();
        Some(keep_subs(value, &subs))
    }
}

/// A comma-separated attribute list of the query string (`attributes`, `excludedAttributes`),
/// one reference per item; empty when absent.
pub(crate) fn attribute_list(params: &Params, name: &str) -> Vec<String> {
    params
        .get(name)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn attr_ref(raw: &str, core: &str, extensions: &[&str]) -> AttrRef {
    if let Some(ext) = extensions.iter().find(|e| e.eq_ignore_ascii_case(raw)) {
        return AttrRef {
            ext: None,
            name: (*ext).to_owned(),
            sub: None,
        };
    }
    let (ext, rest) = match split_urn(raw, core) {
        Some(rest) => (None, rest),
        None => match extensions
            .iter()
            .find_map(|e| split_urn(raw, e).map(|rest| (*e, rest)))
        {
            Some((e, rest)) => (Some(e.to_owned()), rest),
            None => (None, raw),
        },
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n.to_owned(), Some(s.to_owned())),
        None => (rest.to_owned(), None),
    };
    AttrRef { ext, name, sub }
}

/// `rest` of `<urn>:rest` when `raw` starts with `urn` (any case).
fn split_urn<'a>(raw: &'a str, urn: &str) -> Option<&'a str> {
    let head = raw.get(..urn.len())?;
    let rest = raw.get(urn.len()..)?.strip_prefix(':')?;
    head.eq_ignore_ascii_case(urn).then_some(rest)
}

fn keep_subs(value: Value, subs: &[&str]) -> Value {
    let keep = |m: Map<String, Value>| -> Map<String, Value> {
        m.into_iter()
            .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .collect()
    };
    match value {
        Value::Object(m) => Value::Object(keep(m)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Object(m) => Value::Object(keep(m)),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn exclude(map: &mut Map<String, Value>, r: &AttrRef) {
    let find = |map: &Map<String, Value>, name: &str| {
        map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
    };
    let container = match &r.ext {
        None => map,
        Some(ext) => match find(map, ext).and_then(|k| map.get_mut(&k)) {
            Some(Value::Object(inner)) => inner,
            _ => return,
        },
    };
    let Some(key) = find(container, &r.name) else {
        return;
    };
    if r.ext.is_none() && ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(&key)) {
        return;
    }
    match &r.sub {
        None => {
            container.shift_remove(&key);
        }
        Some(sub) => match container.get_mut(&key) {
            Some(Value::Object(inner)) => {
                if let Some(k) = find(inner, sub) {
                    inner.shift_remove(&k);
                }
            }
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::Object(inner) = item
                        && let Some(k) = find(inner, sub)
                    {
                        inner.shift_remove(&k);
                    }
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::{ENTERPRISE_USER_URN, USER_URN};
    use serde_json::json;

    fn projection(pairs: &[(&str, &str)]) -> Projection {
        Projection::from_params(&Params::from_pairs(pairs), USER_URN, &[ENTERPRISE_USER_URN])
    }

    fn doc() -> Value {
        json!({
            "schemas": [USER_URN, ENTERPRISE_USER_URN],
            "id": "u-1",
            "userName": "ada",
            "name": {"givenName": "Ada", "familyName": "L"},
            "emails": [{"value": "a@x", "type": "work"}],
            (ENTERPRISE_USER_URN): {"employeeNumber": "1", "department": "R&D"},
            "meta": {"resourceType": "User"}
        })
    }

    #[test]
    fn attributes_keep_only_those_named() {
        let mut d = doc();
        projection(&[("attributes", "userName,name.givenName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")]).apply(&mut d);
        assert_eq!(
            d,
            json!({
                "schemas": [USER_URN, ENTERPRISE_USER_URN],
                "id": "u-1",
                "userName": "ada",
                "name": {"givenName": "Ada"},
                "emails": [{"value": "a@x"}],
                (ENTERPRISE_USER_URN): {"department": "R&D"}
            })
        );
    }

    #[test]
    fn excluded_attributes_drop_those_named() {
        let mut d = doc();
        projection(&[(
            "excludedAttributes",
            "emails,name.familyName,id,urn:ietf:params:scim:schemas:core:2.0:User:meta",
        )])
        .apply(&mut d);
        assert!(d.get("emails").is_none());
        assert!(d.get("meta").is_none());
        assert_eq!(d["name"], json!({"givenName": "Ada"}));
        assert_eq!(d["id"], "u-1");
    }

    #[test]
    fn returns_answers_for_members() {
        assert!(projection(&[]).returns("members"));
        assert!(!projection(&[("excludedAttributes", "members")]).returns("members"));
        assert!(!projection(&[("attributes", "displayName")]).returns("members"));
        assert!(projection(&[("attributes", "displayName,Members")]).returns("members"));
        assert!(projection(&[("attributes", "members.value")]).returns("members"));
    }
}
