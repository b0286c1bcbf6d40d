//! The discovery documents of RFC 7644 §4: `/ServiceProviderConfig` (RFC 7643 §5),
//! `/ResourceTypes` (§6) and `/Schemas` (§7).
//!
//! The resource types and schemas do not depend on the configuration: they are built once, on
//! first use. The service provider configuration is built once per router (it carries
//! `max_page_size`). Only `meta`, whose `location` depends on the base URL, is added per request.

use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::{ENTERPRISE_USER_URN, GROUP_URN, ROSTER_USER_URN, USER_URN, schema};

pub(crate) const SERVICE_PROVIDER_CONFIG_URN: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub(crate) const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// The resource types and schemas, without `meta`.
pub(crate) struct Catalog {
    resource_types: Vec<Value>,
    schemas: Vec<Value>,
}

pub(crate) static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog {
    resource_types: vec![user_resource_type(), group_resource_type()],
    schemas: schema::all(),
});

impl Catalog {
    /// Every resource type, each with `meta` for `base`.
    pub(crate) fn resource_types(&self, base: &str) -> Vec<Value> {
        self.resource_types
            .iter()
            .map(|rt| resource_type_with_meta(rt, base))
            .collect()
    }

    /// The resource type named `name` (`User`, `Group`; letter case ignored), with `meta`.
    pub(crate) fn resource_type(&self, name: &str, base: &str) -> Option<Value> {
        self.resource_types
            .iter()
            .find(|rt| id_is(rt, name))
            .map(|rt| resource_type_with_meta(rt, base))
    }

    /// Every schema, each with `meta` for `base`.
    pub(crate) fn schemas(&self, base: &str) -> Vec<Value> {
        self.schemas
            .iter()
            .map(|s| schema_with_meta(s, base))
            .collect()
    }

    /// The schema whose URN is `urn` (letter case ignored), with `meta`.
    pub(crate) fn schema(&self, urn: &str, base: &str) -> Option<Value> {
        self.schemas
            .iter()
            .find(|s| id_is(s, urn))
            .map(|s| schema_with_meta(s, base))
    }
}

fn id_is(doc: &Value, id: &str) -> bool {
    doc["id"]
        .as_str()
        .is_some_and(|i| i.eq_ignore_ascii_case(id))
}

fn resource_type_with_meta(doc: &Value, base: &str) -> Value {
    let id = doc["id"].as_str().unwrap_or_default();
    with_meta(doc, "ResourceType", &format!("{base}/ResourceTypes/{id}"))
}

fn schema_with_meta(doc: &Value, base: &str) -> Value {
    let id = doc["id"].as_str().unwrap_or_default();
    with_meta(doc, "Schema", &format!("{base}/Schemas/{id}"))
}

/// `doc` with `meta: {resourceType, location}` appended.
pub(crate) fn with_meta(doc: &Value, resource_type: &str, location: &str) -> Value {
    let mut doc = doc.clone();
    if let Value::Object(map) = &mut doc {
        map.insert(
            "meta".into(),
            json!({"resourceType": resource_type, "location": location}),
        );
    }
    doc
}

fn user_resource_type() -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_URN,
        "schemaExtensions": [
            {"schema": ENTERPRISE_USER_URN, "required": false},
            {"schema": ROSTER_USER_URN, "required": false},
        ],
    })
}

fn group_resource_type() -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "Group",
        "schema": GROUP_URN,
    })
}

/// What `POST /Bulk` accepts (RFC 7644 §3.7.4).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BulkLimits {
    pub(crate) max_operations: usize,
    /// Bytes: the facade's body limit.
    pub(crate) max_payload_size: usize,
}

/// How long a cursor is promised to stay valid, in seconds (RFC 9865 `cursorTimeout`). Roster's
/// cursors are keyset positions: they never expire, so this is a floor, not a limit.
pub(crate) const CURSOR_TIMEOUT_SECONDS: i64 = 86_400;

/// What Roster supports, without `meta`. `max_page_size` is the largest `count` honoured: the
/// `filter.maxResults` and the `pagination.maxPageSize` advertised.
pub(crate) fn service_provider_config(max_page_size: i32, bulk: BulkLimits) -> Value {
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([SERVICE_PROVIDER_CONFIG_URN]));
    doc.insert("patch".into(), json!({"supported": true}));
    doc.insert(
        "bulk".into(),
        json!({
            "supported": true,
            "maxOperations": bulk.max_operations,
            "maxPayloadSize": bulk.max_payload_size,
        }),
    );
    doc.insert(
        "filter".into(),
        json!({"supported": true, "maxResults": max_page_size.max(0)}),
    );
    doc.insert("changePassword".into(), json!({"supported": false}));
    doc.insert("sort".into(), json!({"supported": true}));
    doc.insert("etag".into(), json!({"supported": true}));
    // RFC 9865 §4: both methods; index paging stays the default (what IdPs expect).
    doc.insert(
        "pagination".into(),
        json!({
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": roster_proto::DEFAULT_PAGE_SIZE.min(max_page_size.max(1)),
            "maxPageSize": max_page_size.max(1),
            "cursorTimeout": CURSOR_TIMEOUT_SECONDS,
        }),
    );
    doc.insert(
        "authenticationSchemes".into(),
        json!([{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A Roster API token, sent as `Authorization: Bearer <token>`. \
                            The bare token, without the `Bearer` scheme, is accepted too.",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }, {
            "type": "httpbasic",
            "name": "HTTP Basic",
            "description": "Basic credentials minted by Roster (CreateToken with basic_auth), \
                            for identity providers configured with Basic authentication.",
            "specUri": "https://www.rfc-editor.org/info/rfc7617",
            "primary": false,
        }]),
    );
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://r.example/scim/v2";

    #[test]
    fn lookups_ignore_case_and_add_meta() {
        let rt = CATALOG.resource_type("user", BASE).unwrap();
        assert_eq!(rt["id"], "User");
        assert_eq!(
            rt["meta"],
            json!({"resourceType": "ResourceType", "location": format!("{BASE}/ResourceTypes/User")})
        );
        assert!(CATALOG.resource_type("Users", BASE).is_none());
        let s = CATALOG
            .schema("URN:ietf:params:scim:schemas:core:2.0:group", BASE)
            .unwrap();
        assert_eq!(s["id"], GROUP_URN);
        assert_eq!(s["meta"]["location"], format!("{BASE}/Schemas/{GROUP_URN}"));
        assert!(CATALOG.schema("urn:example:nope", BASE).is_none());
        assert_eq!(CATALOG.schemas(BASE).len(), 4);
        assert_eq!(CATALOG.resource_types(BASE).len(), 2);
    }

    #[test]
    fn every_schema_a_resource_type_names_is_served() {
        for rt in CATALOG.resource_types(BASE) {
            let mut urns = vec![rt["schema"].as_str().unwrap().to_owned()];
            for ext in rt["schemaExtensions"].as_array().into_iter().flatten() {
                urns.push(ext["schema"].as_str().unwrap().to_owned());
            }
            for urn in urns {
                assert!(CATALOG.schema(&urn, BASE).is_some(), "{urn}");
            }
        }
    }
}
