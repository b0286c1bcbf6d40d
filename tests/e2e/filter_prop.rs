//! SCIM filters against an independent in-memory evaluation: random users created over gRPC,
//! random filters run through `ListUsers`, and the ids the database returns compared with those
//! a reference evaluator (RFC 7644 §3.4.2.2, written here, sharing nothing with the service)
//! selects. Plus focused SCIM scenarios for value filters on users and groups.
//!
//! The reference semantics, as Roster documents them: attribute names and JSON keys compare
//! without case; strings compare without letter case except `id`/`externalId`; a multi-valued
//! attribute matches when one of its values does (its `value` when no sub-attribute is named);
//! `ne` is `not eq`; `pr` is "not null, "", [] or {}"; `eq null` is `not pr`; a value filter
//! holds when one element satisfies the whole inner filter.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use roster_proto::v1 as pb;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{TestServer, assert_scim_error, authed, on_both_backends, send};

on_both_backends!(
    random_filters_match_an_in_memory_evaluation,
    value_filters_on_users,
    member_and_group_filters,
    every_attribute_in_schemas_is_filterable,
);

const CORE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

// ---------------------------------------------------------------------------------------------
// Random users.

/// Strings the users are made of: letter case varies, LIKE wildcards and "" included.
const WORDS: &[&str] = &[
    "alpha", "Beta", "gamma", "al", "ALPHA", "a_b", "a%b", "x.y", "", "Zed", "ph", "bet",
];

/// Letter case by a mask: as written, upper, lower, or per character.
fn mangle(s: &str, mask: u32) -> String {
    match mask % 4 {
        0 => s.to_owned(),
        1 => s.to_ascii_uppercase(),
        2 => s.to_ascii_lowercase(),
        _ => s
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if (mask >> (2 + i % 30)) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect(),
    }
}

fn word() -> BoxedStrategy<String> {
    (prop::sample::select(WORDS), any::<u32>())
        .prop_map(|(w, m)| mangle(w, m))
        .boxed()
}

fn opt_word() -> BoxedStrategy<Option<String>> {
    prop::option::weighted(0.7, word()).boxed()
}

fn pick(items: &'static [&'static str]) -> BoxedStrategy<Option<String>> {
    prop::option::weighted(0.8, prop::sample::select(items).prop_map(str::to_owned)).boxed()
}

#[derive(Debug, Clone)]
struct GenEmail {
    value: String,
    kind: Option<String>,
    primary: Option<bool>,
    display: Option<String>,
}

#[derive(Debug, Clone)]
struct GenUser {
    user_name: String,
    external_id: Option<String>,
    display_name: Option<String>,
    title: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    active: bool,
    emails: Vec<GenEmail>,
    /// Everything else, as the `attributes_json` document (keys in varied letter case).
    attributes: Map<String, Value>,
}

fn email() -> BoxedStrategy<GenEmail> {
    (
        word(),
        prop::sample::select(&["x.com", "Y.org", "x.COM"][..]),
        pick(&["work", "Home", "other", "WORK"]),
        prop::option::of(any::<bool>()),
        prop::option::weighted(0.3, word()),
    )
        .prop_map(|(local, domain, kind, primary, display)| GenEmail {
            value: format!("{}@{domain}", if local.is_empty() { "e" } else { &local }),
            kind,
            primary,
            display,
        })
        .boxed()
}

/// A JSON value for a string attribute: mostly strings, sometimes a number or null.
fn json_string() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => word().prop_map(Value::String),
        1 => (0u32..1000).prop_map(|n| json!(n)),
        1 => Just(Value::Null),
    ]
    .boxed()
}

/// `key` in a letter case chosen by `mask`.
fn key(name: &str, mask: u32) -> String {
    if mask.is_multiple_of(3) {
        mangle(name, mask >> 2)
    } else {
        name.to_owned()
    }
}

fn object(fields: Vec<(&str, Option<Value>)>, mask: u32) -> Value {
    let mut out = Map::new();
    for (i, (name, v)) in fields.into_iter().enumerate() {
        if let Some(v) = v {
            out.insert(key(name, mask.rotate_left(i as u32 * 3)), v);
        }
    }
    Value::Object(out)
}

fn phone() -> BoxedStrategy<Value> {
    (
        pick(&["+1 555 0100", "+44 20 7946", "555", "+1 555 0199"]),
        pick(&["mobile", "work", "Home", "MOBILE"]),
        prop::option::of(any::<bool>()),
        any::<u32>(),
    )
        .prop_map(|(value, kind, primary, mask)| {
            object(
                vec![
                    ("value", value.map(Value::String)),
                    ("type", kind.map(Value::String)),
                    ("primary", primary.map(Value::Bool)),
                ],
                mask,
            )
        })
        .boxed()
}

fn address() -> BoxedStrategy<Value> {
    (
        opt_word(),
        pick(&["FR", "us", "DE", "Us"]),
        pick(&["work", "home"]),
        prop::option::of(any::<bool>()),
        any::<u32>(),
    )
        .prop_map(|(locality, country, kind, primary, mask)| {
            object(
                vec![
                    ("locality", locality.map(Value::String)),
                    ("country", country.map(Value::String)),
                    ("type", kind.map(Value::String)),
                    ("primary", primary.map(Value::Bool)),
                ],
                mask,
            )
        })
        .boxed()
}

fn enterprise() -> BoxedStrategy<Value> {
    (
        prop::option::weighted(0.7, json_string()),
        prop::option::weighted(0.7, json_string()),
        prop::option::weighted(0.5, json_string()),
        prop::option::weighted(0.5, json_string()),
        prop::option::weighted(0.5, json_string()),
        prop::option::weighted(
            0.6,
            (opt_word(), opt_word(), any::<u32>()).prop_map(|(value, display, mask)| {
                object(
                    vec![
                        ("value", value.map(Value::String)),
                        ("displayName", display.map(Value::String)),
                    ],
                    mask,
                )
            }),
        ),
        any::<u32>(),
    )
        .prop_map(|(number, department, cost, org, division, manager, mask)| {
            object(
                vec![
                    ("employeeNumber", number),
                    ("department", department),
                    ("costCenter", cost),
                    ("organization", org),
                    ("division", division),
                    ("manager", manager),
                ],
                mask,
            )
        })
        .boxed()
}

fn user() -> BoxedStrategy<GenUser> {
    let core = (
        word(),
        prop::option::weighted(0.5, word()),
        opt_word(),
        opt_word(),
        opt_word(),
        opt_word(),
        prop::bool::weighted(0.7),
    );
    let rest = (
        prop::collection::vec(email(), 0..4),
        prop::option::weighted(0.6, prop::collection::vec(phone(), 0..3)),
        prop::option::weighted(0.5, prop::collection::vec(address(), 0..3)),
        prop::option::weighted(0.6, enterprise()),
        any::<u32>(),
    );
    (core, rest)
        .prop_map(
            |(
                (user_name, external_id, display_name, title, given_name, family_name, active),
                (mut emails, phones, addresses, enterprise, mask),
            )| {
                // At most one primary address (the service insists).
                let mut seen = false;
                for e in &mut emails {
                    if e.primary == Some(true) {
                        if seen {
                            e.primary = Some(false);
                        }
                        seen = true;
                    }
                }
                let mut attributes = Map::new();
                if let Some(p) = phones {
                    attributes.insert(key("phoneNumbers", mask), Value::Array(p));
                }
                if let Some(a) = addresses {
                    attributes.insert(key("addresses", mask >> 5), Value::Array(a));
                }
                if let Some(e) = enterprise {
                    let urn = if mask & 1 == 1 {
                        ENTERPRISE_URN.to_owned()
                    } else {
                        ENTERPRISE_URN.to_ascii_lowercase()
                    };
                    attributes.insert(urn, e);
                }
                GenUser {
                    user_name,
                    external_id,
                    display_name,
                    title,
                    given_name,
                    family_name,
                    active,
                    emails,
                    attributes,
                }
            },
        )
        .boxed()
}

/// A created user as the reference evaluator sees it.
#[derive(Debug, Clone)]
struct Doc {
    id: String,
    /// Microseconds since the epoch, as stored.
    created: i128,
    /// The SCIM-shaped document: core attributes under their canonical names, the rest as sent.
    json: Value,
}

fn doc_of(u: &GenUser, id: String, created: i128) -> Doc {
    let mut m = u.attributes.clone();
    m.insert("id".into(), json!(id));
    m.insert("userName".into(), json!(u.user_name));
    m.insert("active".into(), json!(u.active));
    let opt = |m: &mut Map<String, Value>, k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    };
    opt(&mut m, "externalId", &u.external_id);
    opt(&mut m, "displayName", &u.display_name);
    opt(&mut m, "title", &u.title);
    let mut name = Map::new();
    opt(&mut name, "givenName", &u.given_name);
    opt(&mut name, "familyName", &u.family_name);
    if !name.is_empty() {
        m.insert("name".into(), Value::Object(name));
    }
    let emails: Vec<Value> = u
        .emails
        .iter()
        .map(|e| {
            let mut o = Map::new();
            o.insert("value".into(), json!(e.value));
            opt(&mut o, "type", &e.kind);
            if let Some(p) = e.primary {
                o.insert("primary".into(), json!(p));
            }
            opt(&mut o, "display", &e.display);
            Value::Object(o)
        })
        .collect();
    m.insert("emails".into(), Value::Array(emails));
    Doc {
        id,
        created,
        json: Value::Object(m),
    }
}

// ---------------------------------------------------------------------------------------------
// Random filters and their reference evaluation.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// A string compared without letter case.
    Str,
    /// A string compared exactly.
    Exact,
    Bool,
    Time,
    /// `pr` only.
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    Core,
    Enterprise,
}

#[derive(Debug)]
struct Attr {
    schema: Schema,
    name: &'static str,
    sub: Option<&'static str>,
    ty: Ty,
}

const fn a(schema: Schema, name: &'static str, sub: Option<&'static str>, ty: Ty) -> Attr {
    Attr {
        schema,
        name,
        sub,
        ty,
    }
}

use Schema::{Core, Enterprise};

const ATTRS: &[Attr] = &[
    a(Core, "id", None, Ty::Exact),
    a(Core, "userName", None, Ty::Str),
    a(Core, "externalId", None, Ty::Exact),
    a(Core, "displayName", None, Ty::Str),
    a(Core, "title", None, Ty::Str),
    a(Core, "name", Some("givenName"), Ty::Str),
    a(Core, "name", Some("familyName"), Ty::Str),
    a(Core, "active", None, Ty::Bool),
    a(Core, "meta", Some("created"), Ty::Time),
    a(Core, "emails", None, Ty::Str),
    a(Core, "emails", Some("value"), Ty::Str),
    a(Core, "emails", Some("type"), Ty::Str),
    a(Core, "emails", Some("display"), Ty::Str),
    a(Core, "emails", Some("primary"), Ty::Bool),
    a(Core, "phoneNumbers", None, Ty::Str),
    a(Core, "phoneNumbers", Some("value"), Ty::Str),
    a(Core, "phoneNumbers", Some("type"), Ty::Str),
    a(Core, "phoneNumbers", Some("primary"), Ty::Bool),
    a(Core, "addresses", None, Ty::Complex),
    a(Core, "addresses", Some("locality"), Ty::Str),
    a(Core, "addresses", Some("country"), Ty::Str),
    a(Core, "addresses", Some("primary"), Ty::Bool),
    a(Enterprise, "employeeNumber", None, Ty::Str),
    a(Enterprise, "department", None, Ty::Str),
    a(Enterprise, "costCenter", None, Ty::Str),
    a(Enterprise, "organization", None, Ty::Str),
    a(Enterprise, "division", None, Ty::Str),
    a(Enterprise, "manager", None, Ty::Complex),
    a(Enterprise, "manager", Some("value"), Ty::Str),
    a(Enterprise, "manager", Some("displayName"), Ty::Str),
];

/// Sub-attributes and their types.
type Subs = &'static [(&'static str, Ty)];

/// Attributes a value filter applies to, and their sub-attributes.
const VALUE_PATHS: &[(Schema, &str, Subs)] = &[
    (
        Core,
        "emails",
        &[
            ("value", Ty::Str),
            ("type", Ty::Str),
            ("display", Ty::Str),
            ("primary", Ty::Bool),
        ],
    ),
    (
        Core,
        "phoneNumbers",
        &[("value", Ty::Str), ("type", Ty::Str), ("primary", Ty::Bool)],
    ),
    (
        Core,
        "addresses",
        &[
            ("locality", Ty::Str),
            ("country", Ty::Str),
            ("type", Ty::Str),
            ("primary", Ty::Bool),
        ],
    ),
    (
        Enterprise,
        "manager",
        &[("value", Ty::Str), ("displayName", Ty::Str)],
    ),
];

fn multi_valued(name: &str) -> bool {
    matches!(name, "emails" | "phoneNumbers" | "addresses")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

const STRING_OPS: &[Op] = &[
    Op::Eq,
    Op::Ne,
    Op::Co,
    Op::Sw,
    Op::Ew,
    Op::Gt,
    Op::Ge,
    Op::Lt,
    Op::Le,
];
const BOOL_OPS: &[Op] = &[Op::Eq, Op::Ne];
const TIME_OPS: &[Op] = &[Op::Eq, Op::Ne, Op::Gt, Op::Ge, Op::Lt, Op::Le];

impl Op {
    fn word(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Co => "co",
            Op::Sw => "sw",
            Op::Ew => "ew",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
        }
    }

    fn holds<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Ne | Op::Co | Op::Sw | Op::Ew => unreachable!("handled by the caller"),
        }
    }
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Bool(bool),
    Null,
}

/// One comparison or presence test; `style` picks the letter case and the URN prefix.
#[derive(Debug, Clone)]
enum Leaf {
    Pr,
    Cmp(Op, Val),
}

#[derive(Debug, Clone)]
enum F {
    Attr(usize, Leaf, u32),
    /// `attr[inner]`: index into VALUE_PATHS.
    ValuePath(usize, Box<G>, u32),
    Not(Box<F>),
    And(Box<F>, Box<F>),
    Or(Box<F>, Box<F>),
}

/// The inner filter of a value path, over the sub-attributes of one element.
#[derive(Debug, Clone)]
enum G {
    Attr(usize, Leaf, u32),
    Not(Box<G>),
    And(Box<G>, Box<G>),
    Or(Box<G>, Box<G>),
}

/// Values filters compare with, drawn from the data so that they hit.
struct Pools {
    strings: Vec<String>,
    ids: Vec<String>,
    times: Vec<String>,
}

fn leaf(ty: Ty, pools: &Arc<Pools>) -> BoxedStrategy<Leaf> {
    let pools = Arc::clone(pools);
    let ops: &'static [Op] = match ty {
        Ty::Str | Ty::Exact => STRING_OPS,
        Ty::Bool => BOOL_OPS,
        Ty::Time => TIME_OPS,
        Ty::Complex => &[],
    };
    if ops.is_empty() {
        return Just(Leaf::Pr).boxed();
    }
    (
        0u8..20,
        prop::sample::select(ops),
        any::<prop::sample::Index>(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(move |(kind, op, index, mask, b)| match kind {
            0..=1 => Leaf::Pr,
            2 => Leaf::Cmp(if b { Op::Eq } else { Op::Ne }, Val::Null),
            _ => Leaf::Cmp(
                op,
                match ty {
                    Ty::Bool => Val::Bool(b),
                    Ty::Time => Val::Str(index.get(&pools.times).clone()),
                    Ty::Exact if b => Val::Str(index.get(&pools.ids).clone()),
                    _ => Val::Str(mangle(index.get(&pools.strings).as_str(), mask)),
                },
            ),
        })
        .boxed()
}

fn attr_leaf(pools: &Arc<Pools>) -> BoxedStrategy<F> {
    let choices: Vec<BoxedStrategy<F>> = ATTRS
        .iter()
        .enumerate()
        .map(|(i, attr)| {
            (leaf(attr.ty, pools), any::<u32>())
                .prop_map(move |(l, style)| F::Attr(i, l, style))
                .boxed()
        })
        .collect();
    prop::strategy::Union::new(choices).boxed()
}

fn inner_filter(vp: usize, pools: &Arc<Pools>) -> BoxedStrategy<G> {
    let subs = VALUE_PATHS[vp].2;
    let leaves: Vec<BoxedStrategy<G>> = subs
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| {
            (leaf(*ty, pools), any::<u32>())
                .prop_map(move |(l, style)| G::Attr(i, l, style))
                .boxed()
        })
        .collect();
    prop::strategy::Union::new(leaves)
        .prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|g| G::Not(Box::new(g))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| G::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| G::Or(Box::new(a), Box::new(b))),
            ]
        })
        .boxed()
}

fn filter(pools: &Arc<Pools>) -> BoxedStrategy<F> {
    let value_paths: Vec<BoxedStrategy<F>> = (0..VALUE_PATHS.len())
        .map(|vp| {
            (inner_filter(vp, pools), any::<u32>())
                .prop_map(move |(g, style)| F::ValuePath(vp, Box::new(g), style))
                .boxed()
        })
        .collect();
    let base = prop_oneof![
        4 => attr_leaf(pools),
        1 => prop::strategy::Union::new(value_paths),
    ];
    base.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| F::Not(Box::new(f))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| F::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| F::Or(Box::new(a), Box::new(b))),
        ]
    })
    .boxed()
}

// Rendering.

fn render_value(v: &Val) -> String {
    match v {
        Val::Str(s) => serde_json::to_string(s).unwrap(),
        Val::Bool(b) => b.to_string(),
        Val::Null => "null".into(),
    }
}

fn render_leaf(path: &str, l: &Leaf, style: u32) -> String {
    match l {
        Leaf::Pr => format!("{path} {}", mangle("pr", style >> 20)),
        Leaf::Cmp(op, v) => format!(
            "{path} {} {}",
            mangle(op.word(), style >> 20),
            render_value(v)
        ),
    }
}

fn render_attr(schema: Schema, name: &str, sub: Option<&str>, style: u32) -> String {
    let mut out = match schema {
        Core if style & 1 == 1 => format!("{CORE_URN}:"),
        Core => String::new(),
        Enterprise => format!("{ENTERPRISE_URN}:"),
    };
    out.push_str(&mangle(name, style >> 1));
    if let Some(sub) = sub {
        out.push('.');
        out.push_str(&mangle(sub, style >> 7));
    }
    out
}

fn render(f: &F) -> String {
    match f {
        F::Attr(i, l, style) => {
            let attr = &ATTRS[*i];
            render_leaf(
                &render_attr(attr.schema, attr.name, attr.sub, *style),
                l,
                *style,
            )
        }
        F::ValuePath(vp, g, style) => {
            let (schema, name, _) = VALUE_PATHS[*vp];
            format!(
                "{}[{}]",
                render_attr(schema, name, None, *style),
                render_inner(*vp, g)
            )
        }
        F::Not(x) => format!("not ({})", render(x)),
        F::And(x, y) => format!("({} and {})", render(x), render(y)),
        F::Or(x, y) => format!("({} OR {})", render(x), render(y)),
    }
}

fn render_inner(vp: usize, g: &G) -> String {
    match g {
        G::Attr(i, l, style) => render_leaf(&mangle(VALUE_PATHS[vp].2[*i].0, *style), l, *style),
        G::Not(x) => format!("not ({})", render_inner(vp, x)),
        G::And(x, y) => format!("({} AND {})", render_inner(vp, x), render_inner(vp, y)),
        G::Or(x, y) => format!("({} or {})", render_inner(vp, x), render_inner(vp, y)),
    }
}

// The reference evaluator.

fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The elements of a multi-valued attribute (an object counts as one).
fn elements(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![v],
        _ => Vec::new(),
    }
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn top<'v>(doc: &'v Value, schema: Schema, name: &str) -> Option<&'v Value> {
    match schema {
        Core => get_ci(doc, name),
        Enterprise => get_ci(get_ci(doc, ENTERPRISE_URN)?, name),
    }
}

/// The nodes a path names; without a sub-attribute, a multi-valued attribute compares its
/// `value`s and is present as a whole.
fn nodes<'v>(doc: &'v Value, attr: &Attr, for_presence: bool) -> Vec<&'v Value> {
    let Some(t) = top(doc, attr.schema, attr.name) else {
        return Vec::new();
    };
    let multi = multi_valued(attr.name);
    match attr.sub {
        None if multi && !for_presence => elements(t)
            .into_iter()
            .filter_map(|e| get_ci(e, "value"))
            .collect(),
        None => vec![t],
        Some(sub) if multi => elements(t)
            .into_iter()
            .filter_map(|e| get_ci(e, sub))
            .collect(),
        Some(sub) => get_ci(t, sub).into_iter().collect(),
    }
}

fn fold(s: &str, ty: Ty) -> String {
    if ty == Ty::Exact {
        s.to_owned()
    } else {
        s.to_ascii_lowercase()
    }
}

fn parse_time(s: &str) -> i128 {
    OffsetDateTime::parse(s, &Rfc3339)
        .unwrap()
        .unix_timestamp_nanos()
        / 1000
}

/// Whether one node satisfies `op v` (not `ne`, not null).
fn node_holds(node: &Value, ty: Ty, op: Op, v: &Val, created: i128) -> bool {
    match (ty, v) {
        (Ty::Str | Ty::Exact, Val::Str(want)) => {
            let Value::String(have) = node else {
                return false;
            };
            let (have, want) = (fold(have, ty), fold(want, ty));
            match op {
                Op::Co => have.contains(&want),
                Op::Sw => have.starts_with(&want),
                Op::Ew => have.ends_with(&want),
                op => op.holds(have.as_bytes(), want.as_bytes()),
            }
        }
        (Ty::Bool, Val::Bool(b)) => node == &Value::Bool(*b),
        (Ty::Time, Val::Str(want)) => op.holds(&created, &parse_time(want)),
        other => panic!("the generator made {other:?}"),
    }
}

/// `pr`/comparison over the nodes of one attribute (ne = not eq, null = presence).
fn eval_leaf(present: bool, matching: impl Fn(Op, &Val) -> bool, l: &Leaf) -> bool {
    match l {
        Leaf::Pr => present,
        Leaf::Cmp(Op::Eq, Val::Null) => !present,
        Leaf::Cmp(Op::Ne, Val::Null) => present,
        Leaf::Cmp(Op::Ne, v) => !matching(Op::Eq, v),
        Leaf::Cmp(op, v) => matching(*op, v),
    }
}

fn eval(f: &F, d: &Doc) -> bool {
    match f {
        F::Attr(i, l, _) => {
            let attr = &ATTRS[*i];
            if attr.ty == Ty::Time {
                return eval_leaf(
                    true,
                    |op, v| node_holds(&Value::Null, Ty::Time, op, v, d.created),
                    l,
                );
            }
            let present = nodes(&d.json, attr, true).into_iter().any(non_empty);
            let values = nodes(&d.json, attr, false);
            eval_leaf(
                present,
                |op, v| {
                    values
                        .iter()
                        .any(|n| node_holds(n, attr.ty, op, v, d.created))
                },
                l,
            )
        }
        F::ValuePath(vp, g, _) => {
            let (schema, name, _) = VALUE_PATHS[*vp];
            top(&d.json, schema, name)
                .map(elements)
                .unwrap_or_default()
                .into_iter()
                .any(|e| eval_inner(*vp, g, e))
        }
        F::Not(x) => !eval(x, d),
        F::And(x, y) => eval(x, d) && eval(y, d),
        F::Or(x, y) => eval(x, d) || eval(y, d),
    }
}

fn eval_inner(vp: usize, g: &G, element: &Value) -> bool {
    match g {
        G::Attr(i, l, _) => {
            let (sub, ty) = VALUE_PATHS[vp].2[*i];
            let node = get_ci(element, sub);
            eval_leaf(
                node.is_some_and(non_empty),
                |op, v| node.is_some_and(|n| node_holds(n, ty, op, v, 0)),
                l,
            )
        }
        G::Not(x) => !eval_inner(vp, x, element),
        G::And(x, y) => eval_inner(vp, x, element) && eval_inner(vp, y, element),
        G::Or(x, y) => eval_inner(vp, x, element) || eval_inner(vp, y, element),
    }
}

/// Every string in the documents, and pieces of them, for filter values.
fn strings_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            out.push(s.clone());
            if s.len() > 2 {
                out.push(s[..2].to_owned());
                out.push(s[s.len() - 2..].to_owned());
                out.push(s[1..s.len() - 1].to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| strings_of(i, out)),
        Value::Object(o) => o.values().for_each(|i| strings_of(i, out)),
        _ => {}
    }
}

fn rfc3339(micros: i128, offset_hours: i8) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1000)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(offset_hours, 0, 0).unwrap())
        .format(&Rfc3339)
        .unwrap()
}

async fn random_filters_match_an_in_memory_evaluation(server: &TestServer) {
    let started = std::time::Instant::now();
    let token = server.scim_token.clone();
    let mut client = pb::user_service_client::UserServiceClient::new(server.channel().await);
    let config = Config {
        cases: 200,
        failure_persistence: None,
        max_shrink_iters: 300,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    let users = prop::collection::vec(user(), 40)
        .new_tree(&mut runner)
        .unwrap()
        .current();

    let mut created = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let reply = client
            .create_user(authed(
                &token,
                pb::CreateUserRequest {
                    user: Some(pb::User {
                        // Unique without regard to case.
                        user_name: format!("{}{i}", u.user_name),
                        external_id: u.external_id.clone(),
                        display_name: u.display_name.clone(),
                        title: u.title.clone(),
                        name: (u.given_name.is_some() || u.family_name.is_some()).then(|| {
                            pb::PersonName {
                                given_name: u.given_name.clone(),
                                family_name: u.family_name.clone(),
                                ..Default::default()
                            }
                        }),
                        active: u.active,
                        emails: u
                            .emails
                            .iter()
                            .map(|e| pb::Email {
                                value: e.value.clone(),
                                r#type: e.kind.clone(),
                                primary: e.primary,
                                display: e.display.clone(),
                            })
                            .collect(),
                        attributes_json: Value::Object(u.attributes.clone()).to_string(),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .unwrap_or_else(|e| panic!("CreateUser {u:?}: {e}"))
            .into_inner();
        let mut u = u.clone();
        u.user_name = format!("{}{i}", u.user_name);
        created.push((u, reply.id));
    }
    // The stored creation times, as the database keeps them.
    let all = client
        .list_users(authed(
            &token,
            pb::ListUsersRequest {
                page_size: 1000,
                ..Default::default()
            },
        ))
        .await
        .expect("ListUsers")
        .into_inner();
    assert_eq!(all.users.len(), created.len());
    let docs: Vec<Doc> = created
        .iter()
        .map(|(u, id)| {
            let stored = all.users.iter().find(|s| &s.id == id).expect("listed");
            let t = stored.create_time.as_ref().expect("create_time");
            let micros = i128::from(t.seconds) * 1_000_000 + i128::from(t.nanos / 1000);
            doc_of(u, id.clone(), micros)
        })
        .collect();

    let mut strings = vec!["zzz".to_owned(), "@".to_owned(), "%".to_owned()];
    for d in &docs {
        strings_of(&d.json, &mut strings);
    }
    strings.sort();
    strings.dedup();
    let mut ids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
    ids.push(docs[0].id.to_ascii_uppercase());
    ids.push("no-such-id".into());
    let mut times = Vec::new();
    for (i, d) in docs.iter().enumerate().step_by(7) {
        for delta in [-1, 0, 1] {
            times.push(rfc3339(d.created + delta, (i % 3) as i8 - 1));
        }
    }
    let pools = Arc::new(Pools {
        strings,
        ids,
        times,
    });

    let handle = tokio::runtime::Handle::current();
    let docs = Arc::new(docs);
    // Filters that select some users but not all: the ones that tell right from wrong.
    let mixed = std::cell::Cell::new(0u32);
    let result = runner.run(&filter(&pools), |f| {
        let text = render(&f);
        let expected: BTreeSet<String> = docs
            .iter()
            .filter(|d| eval(&f, d))
            .map(|d| d.id.clone())
            .collect();
        let mut client = client.clone();
        let token = token.clone();
        let q = text.clone();
        let reply = tokio::task::block_in_place(|| {
            handle.block_on(async move {
                client
                    .list_users(authed(
                        &token,
                        pb::ListUsersRequest {
                            page_size: 1000,
                            filter: q,
                            ..Default::default()
                        },
                    ))
                    .await
            })
        })
        .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?
        .into_inner();
        if !expected.is_empty() && expected.len() < docs.len() {
            mixed.set(mixed.get() + 1);
        }
        let got: BTreeSet<String> = reply.users.into_iter().map(|u| u.id).collect();
        prop_assert_eq!(&got, &expected, "filter: {}", text);
        prop_assert_eq!(reply.total_size, expected.len() as i64, "filter: {}", text);
        Ok(())
    });
    if let Err(e) = result {
        panic!(
            "{e}\nusers: {:#?}",
            docs.iter().map(|d| &d.json).collect::<Vec<_>>()
        );
    }
    eprintln!(
        "{} filters checked in {:?}, {} of them selecting some users but not all",
        config.cases,
        started.elapsed(),
        mixed.get()
    );
    assert!(
        mixed.get() >= config.cases / 5,
        "too few filters tell users apart: {}",
        mixed.get()
    );
}

// ---------------------------------------------------------------------------------------------
// Focused SCIM scenarios.

async fn create_user(server: &TestServer, body: Value) -> String {
    let (status, created) = send(server.scim_req(Method::POST, "/Users").json(&body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

async fn ids(server: &TestServer, resource: &str, filter: &str) -> BTreeSet<String> {
    let (status, list) = send(
        server
            .scim_req(Method::GET, &format!("/{resource}"))
            .query(&[("filter", filter)]),
    )
    .await;
    assert_eq!(status, 200, "{filter}: {list}");
    let ids: BTreeSet<String> = list["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(list["totalResults"], ids.len(), "{filter}");
    ids
}

async fn refused(server: &TestServer, resource: &str, filter: &str, names: &str) {
    let (status, err) = send(
        server
            .scim_req(Method::GET, &format!("/{resource}"))
            .query(&[("filter", filter)]),
    )
    .await;
    assert_eq!(status, 400, "{filter}: {err}");
    assert_scim_error(&err, 400, Some("invalidFilter"));
    assert!(
        err["detail"].as_str().unwrap_or_default().contains(names),
        "{filter}: {err}"
    );
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}

async fn value_filters_on_users(server: &TestServer) {
    let ada = create_user(
        server,
        json!({
            "schemas": [CORE_URN, ENTERPRISE_URN],
            "userName": "ada",
            "emails": [
                {"value": "Ada@X.com", "type": "work", "primary": true},
                {"value": "ada@home.example", "type": "home"}
            ],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
            "addresses": [{"locality": "Paris", "country": "FR", "primary": true}],
            ENTERPRISE_URN: {"employeeNumber": "701", "department": "Engineering",
                             "manager": {"value": "boss-1"}}
        }),
    )
    .await;
    // The same two addresses, types swapped: no one address is both work and @x.com.
    let bob = create_user(
        server,
        json!({
            "schemas": [CORE_URN],
            "userName": "bob",
            "emails": [
                {"value": "bob@x.com", "type": "home"},
                {"value": "bob@y.org", "type": "work", "primary": true}
            ],
            "phoneNumbers": [{"value": "+44 20 7946", "type": "work"}],
            "addresses": [{"locality": "Paris", "country": "FR"},
                          {"locality": "Lyon", "primary": true}]
        }),
    )
    .await;
    let cy = create_user(
        server,
        json!({
            "schemas": [CORE_URN, ENTERPRISE_URN],
            "userName": "cy",
            "emails": [{"value": "cy@x.com", "type": "WORK", "display": "Cy at work"}],
            ENTERPRISE_URN: {"department": "Sales", "employeeNumber": "702"}
        }),
    )
    .await;

    for (filter, want) in [
        (
            r#"emails[type eq "work" and value co "@x.com"]"#,
            set(&[&ada, &cy]),
        ),
        (
            r#"emails[type eq "work" and value eq "BOB@X.COM"]"#,
            set(&[]),
        ),
        (
            r#"emails[value eq "bob@x.com" and type eq "home"]"#,
            set(&[&bob]),
        ),
        (
            r#"emails[primary eq true and value ew ".org"]"#,
            set(&[&bob]),
        ),
        (r#"emails[display pr]"#, set(&[&cy])),
        (r#"not (emails[type eq "home"])"#, set(&[&cy])),
        // Two conditions on a multi-valued attribute may hold on different values...
        (
            r#"emails.type eq "home" and emails.value co "@x.""#,
            set(&[&ada, &bob]),
        ),
        // ...but on the same one inside a value filter.
        (r#"emails[type eq "home" and value co "@x."]"#, set(&[&bob])),
        (r#"emails.primary eq true"#, set(&[&ada, &bob])),
        (r#"emails.display co "AT WORK""#, set(&[&cy])),
        (r#"phoneNumbers[type eq "mobile"]"#, set(&[&ada])),
        (r#"phoneNumbers.value sw "+44""#, set(&[&bob])),
        (r#"phoneNumbers pr"#, set(&[&ada, &bob])),
        (
            r#"addresses[locality eq "paris" and primary eq true]"#,
            set(&[&ada]),
        ),
        (r#"addresses.locality eq "PARIS""#, set(&[&ada, &bob])),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701\"",
            set(&[&ada]),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr",
            set(&[&ada, &cy]),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co \"ENG\"",
            set(&[&ada]),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"boss-1\"",
            set(&[&ada]),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department ne \"sales\"",
            set(&[&ada, &bob]),
        ),
    ] {
        assert_eq!(ids(server, "Users", filter).await, want, "{filter}");
    }

    // The same filter by POST /Users/.search.
    let (status, list) = send(
        server
            .scim_req(Method::POST, "/Users/.search")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": r#"emails[type eq "work" and value co "@x.com"]"#
            })),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["totalResults"], 2, "{list}");

    refused(server, "Users", r#"emails[noSuch eq "x"]"#, "noSuch").await;
    refused(server, "Users", "active gt true", "active").await;
    refused(
        server,
        "Users",
        r#"emails.primary co "t""#,
        "emails.primary",
    )
    .await;
    refused(
        server,
        "Users",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize eq \"9\"",
        "shoeSize",
    )
    .await;
    refused(server, "Users", r#"addresses eq "Paris""#, "addresses").await;

    // Filtering is still advertised.
    let (status, config) = send(server.scim_req(Method::GET, "/ServiceProviderConfig")).await;
    assert_eq!(status, 200);
    assert_eq!(config["filter"]["supported"], true, "{config}");
}

async fn member_and_group_filters(server: &TestServer) {
    let user = |name: &'static str, display: Option<&'static str>| {
        let mut body = json!({"schemas": [CORE_URN], "userName": name});
        if let Some(d) = display {
            body["displayName"] = json!(d);
        }
        create_user(server, body)
    };
    let ann = user("ann@example.com", Some("Ann Smith")).await;
    let ben = user("ben@example.com", None).await;
    let cat = user("cat@example.com", Some("Cat")).await;
    let group = |name: &'static str, members: Vec<&String>| {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        async move {
            let (status, g) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
                "members": members
            })))
            .await;
            assert_eq!(status, 201, "{g}");
            g["id"].as_str().expect("id").to_owned()
        }
    };
    let eng = group("Engineering", vec![&ann, &ben]).await;
    let ops = group("Ops", vec![&ben]).await;
    let empty = group("Empty", vec![]).await;

    for (filter, want) in [
        (format!(r#"members[value eq "{ann}"]"#), set(&[&eng])),
        (format!(r#"members[value eq "{ben}"]"#), set(&[&eng, &ops])),
        (format!(r#"members.value eq "{cat}""#), set(&[])),
        (format!(r#"members eq "{ben}""#), set(&[&eng, &ops])),
        (
            format!(r#"members[value eq "{}"]"#, ann.to_uppercase()),
            set(&[]),
        ),
        (r#"members[display co "SMITH"]"#.to_owned(), set(&[&eng])),
        // A member without a displayName is shown by userName.
        (
            r#"members.display sw "ben@""#.to_owned(),
            set(&[&eng, &ops]),
        ),
        (r#"members[type eq "user"]"#.to_owned(), set(&[&eng, &ops])),
        ("members pr".to_owned(), set(&[&eng, &ops])),
        ("not (members pr)".to_owned(), set(&[&empty])),
        (
            format!(r#"displayName sw "e" and members[value ne "{ann}"]"#),
            set(&[&eng]),
        ),
    ] {
        assert_eq!(ids(server, "Groups", &filter).await, want, "{filter}");
    }
    for (filter, want) in [
        (format!(r#"groups[value eq "{ops}"]"#), set(&[&ben])),
        (
            r#"groups[display eq "engineering"]"#.to_owned(),
            set(&[&ann, &ben]),
        ),
        (r#"groups.display sw "OP""#.to_owned(), set(&[&ben])),
        ("groups pr".to_owned(), set(&[&ann, &ben])),
        (format!(r#"groups ne "{eng}""#), set(&[&cat])),
    ] {
        assert_eq!(ids(server, "Users", &filter).await, want, "{filter}");
    }
    refused(server, "Groups", r#"members[noSuch eq "x"]"#, "noSuch").await;
    refused(server, "Groups", r#"emails[type eq "work"]"#, "emails").await;
    refused(
        server,
        "Groups",
        r#"displayName[value eq "x"]"#,
        "displayName",
    )
    .await;
}

/// `/Schemas` is the promise: every attribute and sub-attribute it declares for Users and Groups
/// can be filtered on (`pr`), by its short name and by its URN-qualified name, so that the
/// filter compiler's attribute table cannot drift from the schema documents.
async fn every_attribute_in_schemas_is_filterable(server: &TestServer) {
    let (status, schemas) = send(server.scim_req(Method::GET, "/Schemas")).await;
    assert_eq!(status, 200, "{schemas}");
    let mut checked = 0;
    let mut failed = Vec::new();
    for schema in schemas["Resources"].as_array().expect("Resources") {
        let urn = schema["id"].as_str().expect("id");
        let resource = if urn.ends_with(":Group") {
            "Groups"
        } else {
            "Users"
        };
        let core = urn.starts_with("urn:ietf:params:scim:schemas:core:");
        for attr in schema["attributes"].as_array().expect("attributes") {
            let name = attr["name"].as_str().expect("name");
            let mut paths = vec![name.to_owned()];
            for sub in attr["subAttributes"].as_array().into_iter().flatten() {
                let sub = sub["name"].as_str().expect("sub-attribute name");
                paths.push(format!("{name}.{sub}"));
            }
            for path in paths {
                // `password` is never returned, so never filterable (RFC 7643 §4.1.1); `$ref`
                // is no ATTRNAME in the filter grammar (RFC 7644 §3.4.2.2).
                if path == "password" || path.contains('$') {
                    continue;
                }
                let mut filters = vec![format!("{urn}:{path} pr")];
                if core {
                    filters.push(format!("{path} pr"));
                }
                for filter in filters {
                    let (status, body) = send(
                        server
                            .scim_req(Method::GET, &format!("/{resource}"))
                            .query(&[("filter", filter.as_str()), ("count", "1")]),
                    )
                    .await;
                    if status != 200 {
                        failed.push(format!("{resource}?filter={filter}: {body}"));
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(failed.is_empty(), "{:#?}", failed);
    assert!(checked > 60, "only {checked} filters were checked");
}
