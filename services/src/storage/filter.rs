//! SCIM filters (RFC 7644 §3.4.2.2), parsed by `scim_v2`, compiled to SQL with bound values.
//!
//! A filter becomes one SQL condition ([`Cond`]): SQL text written here from fixed pieces (column
//! names, the attribute catalog below) plus bound parameters for every value that comes from
//! the filter. Filters are evaluated by the database, never in memory.
//!
//! What each attribute means:
//! - Attribute names and operators are case-insensitive; so are the keys of the JSON documents
//!   (`attributes`, `emails`) the stored attributes are read from.
//! - String comparisons honour each attribute's `caseExact` as `/Schemas` declares it: `id`,
//!   `externalId`, `groups.value` and `members.value` compare exactly, every other string
//!   without letter case (`userName`, `emails.value` and a group's `displayName` through their
//!   stored lower-case keys, which are indexed; the others through SQL `lower()`, which folds
//!   ASCII letters on SQLite). `gt`/`ge`/`lt`/`le` order strings by their bytes on both backends.
//! - A multi-valued attribute matches when one of its values does (`emails.type eq "work"`);
//!   without a sub-attribute it compares its `value` (`emails co "@x"`). A value filter
//!   (`emails[type eq "work" and value co "@x"]`) matches when ONE value satisfies the whole
//!   inner filter.
//! - `ne` is `not (… eq …)`: a user without the attribute matches `title ne "x"`.
//! - `pr` matches a value that is not null, `""`, `[]` or `{}`; `eq null` is `not (… pr)`.
//! - Booleans (`active`, `emails.primary`, …) take `eq`/`ne` only; dateTimes (`meta.created`,
//!   `meta.lastModified`) take `eq`/`ne`/`gt`/`ge`/`lt`/`le` with an RFC 3339 value; complex and
//!   binary attributes take `pr` only. A string attribute stored as another JSON type (a number
//!   `employeeNumber`) matches `pr` but no string comparison.
//! - An attribute Roster does not know, or a comparison that does not apply to it, is a 400
//!   `invalidFilter` naming it.
//!
//! What a filter may cost: besides the parser's bounds (8 192 bytes, 1 024 terms), a compiled
//! filter is refused with 400 `invalidFilter`, before any SQL runs, when it has more than
//! [`MAX_TERMS`] comparisons and presence tests, more than [`MAX_CORRELATED`] subqueries run
//! for every row (value filters, the attributes kept in JSON, computed roles), more than
//! [`MAX_SUBQUERIES`] subqueries of any kind, or more than [`MAX_PATTERNS`] `co`/`sw`/`ew`
//! comparisons. Okta and Entra send one or two terms; these bounds are many times that, and
//! keep the worst filter to a small multiple of an ordinary one. What is left (a large
//! tenant) is bounded by the statement timeout.

use std::cell::Cell;

use diesel::QueryResult;
use diesel::backend::Backend as DieselBackend;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Bool, HasSqlType, Text, Timestamp};
use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, ValFilter, ValuePath};
use time::PrimitiveDateTime;

pub use scim_v2::filter::Filter;

use super::{Backend, DbConnection};
use crate::domain::{DomainError, ScimType};

/// Longest filter accepted, in bytes (the parser also bounds depth and terms).
pub const MAX_FILTER_LEN: usize = 8192;

/// Most comparisons and presence tests in one filter, value filters' included.
pub const MAX_TERMS: usize = 64;
/// Most subqueries run for every row a filter looks at: value filters (`emails[...]`), the
/// attributes kept in JSON documents (`emails.type`, `phoneNumbers`, the enterprise
/// extension), and the computed `effectiveRole`/`roleSource`.
pub const MAX_CORRELATED: usize = 16;
/// Most subqueries of any kind (also the index lookups of `emails.value`, `groups` and
/// `members`).
pub const MAX_SUBQUERIES: usize = 32;
/// Most `co`/`sw`/`ew` comparisons (patterns, which no index serves).
pub const MAX_PATTERNS: usize = 16;

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:user";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:group";
const ROSTER_URN: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:user";
/// Lower-cased: the key the enterprise extension is stored under, compared without case.
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user";

/// The backend `conn` talks to (the SQL of JSON attributes differs).
pub fn backend(conn: &DbConnection) -> Backend {
    match conn {
        DbConnection::Sqlite(_) => Backend::Sqlite,
        DbConnection::Postgres(_) => Backend::Postgres,
    }
}

/// Parses a filter; an empty string means "no filter".
pub fn parse(raw: &str) -> Result<Option<Filter>, DomainError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > MAX_FILTER_LEN {
        return Err(DomainError::invalid(
            ScimType::InvalidFilter,
            format!("the filter is longer than {MAX_FILTER_LEN} bytes"),
        ));
    }
    raw.parse::<Filter>()
        .map(Some)
        .map_err(|e| DomainError::invalid(ScimType::InvalidFilter, format!("invalid filter: {e}")))
}

/// The user's groups that are mapped to a role (`gr`), for the Roster extension's computed
/// `effectiveRole` and `roleSource`.
const MAPPED_GROUPS: &str = "FROM \"group_members\" gm JOIN \"group_roles\" gr \
     ON gr.tenant_id = gm.tenant_id AND gr.group_id = gm.group_id \
     WHERE gm.tenant_id = \"users\".\"tenant_id\" AND gm.user_id = \"users\".\"id\"";

/// `users.active`, and whether it is assigned (a removed `active` is stored false, unassigned).
const ACTIVE: &str = "\"users\".\"active\"";
const ACTIVE_ASSIGNED: &str = "\"users\".\"active_assigned\"";

fn invalid(detail: String) -> DomainError {
    DomainError::invalid(ScimType::InvalidFilter, detail)
}

/// The value of a filter that is exactly `<attribute> eq "<value>"` on the named attribute of
/// `resource`'s core schema (compared without letter case), e.g. Okta's `userName eq "…"`
/// lookup: such a filter is a point lookup on a unique index, served without a dynamic query.
/// Anything else (another schema's URN included) goes through the compiler, which judges it.
pub fn unique_eq<'f>(f: &'f Filter, resource: Resource, attribute: &str) -> Option<&'f str> {
    let core = match resource {
        Resource::User => USER_URN,
        Resource::Group => GROUP_URN,
    };
    match f {
        Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(v)))
            if path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case(attribute)
                && path
                    .uri
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(core)) =>
        {
            Some(v)
        }
        _ => None,
    }
}

/// Compiles a filter over users of `tenant_id` (a condition on `users`: clone it to use it in
/// more than one query). A filter over the cost limits is refused (see the module's notes).
pub fn users(f: &Filter, tenant_id: &str, backend: Backend) -> Result<Cond, DomainError> {
    compile(f, tenant_id, backend, Resource::User)
}

/// Compiles a filter over groups of `tenant_id`.
pub fn groups(f: &Filter, tenant_id: &str, backend: Backend) -> Result<Cond, DomainError> {
    compile(f, tenant_id, backend, Resource::Group)
}

fn compile(
    f: &Filter,
    tenant_id: &str,
    backend: Backend,
    r: Resource,
) -> Result<Cond, DomainError> {
    let mut compiler = Compiler::new(backend, tenant_id);
    let cond = compiler.filter(f, r)?;
    compiler.cost().check()?;
    let mut cond = compiler.bounded(cond);
    cond.cacheable = matches!(f, Filter::Attr(_));
    Ok(cond)
}

/// What a compiled filter costs: the pieces counted against the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Comparisons and presence tests.
    pub terms: usize,
    /// Subqueries run for every row.
    pub correlated: usize,
    /// Subqueries of any kind.
    pub subqueries: usize,
    /// `co`/`sw`/`ew` comparisons.
    pub patterns: usize,
}

impl Cost {
    /// Refuses a filter over any limit, naming what it has too many of.
    fn check(&self) -> Result<(), DomainError> {
        let over = |n: usize, max: usize, what: &str| {
            Err(invalid(format!(
                "the filter is too costly: it has {n} {what}, and at most {max} are allowed per \
                 filter"
            )))
        };
        // The most specific first: the subqueries run for every row cost the most.
        if self.correlated > MAX_CORRELATED {
            return over(
                self.correlated,
                MAX_CORRELATED,
                "value filters / JSON subqueries (each value filter such as emails[...] and \
                 each test of a sub-attribute inside it, each test of an attribute kept as JSON \
                 such as emails.type, phoneNumbers or the enterprise extension's, each \
                 effectiveRole or roleSource)",
            );
        }
        if self.subqueries > MAX_SUBQUERIES {
            return over(
                self.subqueries,
                MAX_SUBQUERIES,
                "subqueries (the above, and lookups of emails, groups or members)",
            );
        }
        if self.patterns > MAX_PATTERNS {
            return over(self.patterns, MAX_PATTERNS, "co/sw/ew comparisons");
        }
        if self.terms > MAX_TERMS {
            return over(self.terms, MAX_TERMS, "comparisons and presence tests");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The SQL condition.

#[derive(Debug, Clone)]
enum Part {
    /// SQL text written by this module (never a value from the filter).
    Sql(String),
    Text(String),
    Time(PrimitiveDateTime),
}

/// A boolean SQL condition: trusted SQL text and bound values. Never NULL (every comparison of
/// a nullable value is guarded), so that `NOT` inverts it exactly.
#[derive(Debug, Clone, Default)]
pub struct Cond {
    parts: Vec<Part>,
    /// Whether a prepared statement may be cached: only for one attribute expression, whose
    /// shapes are few (combinations are unbounded and would grow the statement cache).
    cacheable: bool,
}

impl Cond {
    fn sql(s: impl Into<String>) -> Cond {
        Cond {
            parts: vec![Part::Sql(s.into())],
            cacheable: false,
        }
    }

    fn push(mut self, s: impl Into<String>) -> Cond {
        self.parts.push(Part::Sql(s.into()));
        self
    }

    fn text(mut self, v: String) -> Cond {
        self.parts.push(Part::Text(v));
        self
    }

    fn time(mut self, t: PrimitiveDateTime) -> Cond {
        self.parts.push(Part::Time(t));
        self
    }

    fn then(mut self, other: Cond) -> Cond {
        self.parts.extend(other.parts);
        self
    }

    fn always(value: bool) -> Cond {
        Cond::sql(if value { "1=1" } else { "1=0" })
    }

    fn not(self) -> Cond {
        Cond::sql("NOT (").then(self).push(")")
    }

    /// `(a AND b)` / `(a OR b)` over all items, grouped as a balanced tree so that a long chain
    /// stays shallow (SQLite bounds expression depth).
    fn join(mut items: Vec<Cond>, op: &str, empty: bool) -> Cond {
        match items.len() {
            0 => Cond::always(empty),
            1 => items.pop().unwrap_or_default(),
            n => {
                let right = items.split_off(n / 2);
                Cond::sql("(")
                    .then(Cond::join(items, op, empty))
                    .push(format!(" {op} "))
                    .then(Cond::join(right, op, empty))
                    .push(")")
            }
        }
    }

    fn and(items: Vec<Cond>) -> Cond {
        Cond::join(items, "AND", true)
    }

    fn or(items: Vec<Cond>) -> Cond {
        Cond::join(items, "OR", false)
    }
}

impl Expression for Cond {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for Cond {}

impl<QS> SelectableExpression<QS> for Cond {}

impl ValidGrouping<()> for Cond {
    type IsAggregate = is_aggregate::Never;
}

impl QueryId for Cond {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for Cond
where
    DB: DieselBackend + HasSqlType<Text> + HasSqlType<Timestamp>,
    String: ToSql<Text, DB>,
    PrimitiveDateTime: ToSql<Timestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cacheable {
            out.unsafe_to_cache_prepared();
        }
        for part in &self.parts {
            match part {
                Part::Sql(s) => out.push_sql(s),
                Part::Text(v) => out.push_bind_param::<Text, String>(v)?,
                Part::Time(t) => out.push_bind_param::<Timestamp, PrimitiveDateTime>(t)?,
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The attribute catalog (as facade/src/scim/schema.rs declares it). Names are lower-case.

#[derive(Debug, Clone, Copy)]
enum Kind {
    Str { exact: bool },
    Bool,
    Binary,
    Complex(&'static [Sub]),
}

#[derive(Debug)]
struct Sub {
    name: &'static str,
    kind: Kind,
}

const fn sub(name: &'static str, kind: Kind) -> Sub {
    Sub { name, kind }
}

const STR: Kind = Kind::Str { exact: false };

/// `value`, `display`, `type`, `primary` (RFC 7643 §2.4).
const STANDARD: &[Sub] = &[
    sub("value", STR),
    sub("display", STR),
    sub("type", STR),
    sub("primary", Kind::Bool),
];

const CERTIFICATES: &[Sub] = &[
    sub("value", Kind::Binary),
    sub("display", STR),
    sub("type", STR),
    sub("primary", Kind::Bool),
];

const ADDRESSES: &[Sub] = &[
    sub("formatted", STR),
    sub("streetaddress", STR),
    sub("locality", STR),
    sub("region", STR),
    sub("postalcode", STR),
    sub("country", STR),
    sub("type", STR),
    sub("primary", Kind::Bool),
];

const MANAGER: &[Sub] = &[sub("value", STR), sub("displayname", STR)];

/// An attribute kept in the `attributes` JSON document.
#[derive(Debug)]
struct JsonAttr {
    name: &'static str,
    multi: bool,
    kind: Kind,
}

const fn json_attr(name: &'static str, multi: bool, kind: Kind) -> JsonAttr {
    JsonAttr { name, multi, kind }
}

const CORE_JSON: &[JsonAttr] = &[
    json_attr("phonenumbers", true, Kind::Complex(STANDARD)),
    json_attr("ims", true, Kind::Complex(STANDARD)),
    json_attr("photos", true, Kind::Complex(STANDARD)),
    json_attr("addresses", true, Kind::Complex(ADDRESSES)),
    json_attr("entitlements", true, Kind::Complex(STANDARD)),
    json_attr("roles", true, Kind::Complex(STANDARD)),
    json_attr("x509certificates", true, Kind::Complex(CERTIFICATES)),
];

const ENTERPRISE_JSON: &[JsonAttr] = &[
    json_attr("employeenumber", false, STR),
    json_attr("costcenter", false, STR),
    json_attr("organization", false, STR),
    json_attr("division", false, STR),
    json_attr("department", false, STR),
    json_attr("manager", false, Kind::Complex(MANAGER)),
];

/// The sub-attributes of a user's `emails` (the `emails` JSON column, keys as serde writes them).
const EMAILS: &[Sub] = STANDARD;

fn find_sub(subs: &'static [Sub], name: &str) -> Option<&'static Sub> {
    subs.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// How a text value compares without letter case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// Exactly (`caseExact`).
    Exact,
    /// Through SQL `lower()` on both sides.
    Lower,
    /// The column holds the value lower-cased (by Rust): the bound value is lower-cased too.
    Stored,
}

/// A text value of a row: a column, or an expression over joined rows.
#[derive(Debug, Clone)]
struct Column {
    sql: String,
    fold: Fold,
    nullable: bool,
}

fn column(sql: &str, fold: Fold, nullable: bool) -> Column {
    Column {
        sql: sql.to_owned(),
        fold,
        nullable,
    }
}

/// Where a JSON walk starts.
#[derive(Debug, Clone)]
enum Input {
    /// A text column holding a JSON document.
    Column(&'static str),
    /// A node reached by an earlier walk (its alias).
    Node(String),
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// The member of an object with this (lower-case) name, compared without case.
    Key(&'static str),
    /// Each element of an array (an object counts as a one-element array).
    Elements,
}

/// What the elements of a value filter (`attr[...]`) are.
enum Elements {
    /// JSON nodes with these sub-attributes.
    Json { alias: String, subs: &'static [Sub] },
    /// Rows of a join, whose sub-attributes are columns.
    Rows(fn(&str) -> Option<Column>),
}

/// The resource a filter is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

/// A user's `groups.*` as columns of `group_members gm JOIN groups g`.
fn membership_column(sub: &str) -> Option<Column> {
    Some(match sub.to_ascii_lowercase().as_str() {
        "value" => column("gm.group_id", Fold::Exact, false),
        "display" => column("g.display_name_lower", Fold::Stored, false),
        "type" => column("'direct'", Fold::Lower, false),
        _ => return None,
    })
}

/// A group's `members.*` as columns of `group_members gm JOIN users u`.
fn member_column(sub: &str) -> Option<Column> {
    Some(match sub.to_ascii_lowercase().as_str() {
        "value" => column("gm.user_id", Fold::Exact, false),
        "display" => column("COALESCE(u.display_name, u.user_name)", Fold::Lower, false),
        "type" => column("'User'", Fold::Lower, false),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Values.

fn string_value<'v>(attr: &str, value: &'v CompValue) -> Result<&'v str, DomainError> {
    match value {
        // No stored value holds a NUL, and PostgreSQL cannot even take one as a parameter.
        CompValue::Str(s) if s.contains('\0') => Err(invalid(format!(
            "{attr} compares with a string without NUL characters"
        ))),
        CompValue::Str(s) => Ok(s),
        other => Err(invalid(format!(
            "{attr} compares with a string, not {other}"
        ))),
    }
}

fn bool_value(attr: &str, value: &CompValue) -> Result<bool, DomainError> {
    match value {
        CompValue::True => Ok(true),
        CompValue::False => Ok(false),
        CompValue::Str(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        CompValue::Str(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(invalid(format!(
            "{attr} compares with a boolean, not {other}"
        ))),
    }
}

/// The first and last years a dateTime in a filter may have, in UTC (RFC 3339 writes four
/// digits; both backends store every such year).
const MIN_YEAR: i32 = 1;
const MAX_YEAR: i32 = 9999;

fn time_value(attr: &str, value: &CompValue) -> Result<PrimitiveDateTime, DomainError> {
    let s = string_value(attr, value)?;
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            invalid(format!(
                "{attr} compares with an RFC 3339 dateTime, not {s:?}"
            ))
        })?;
    // `9999-12-31T23:59:59-01:00` is in year 10000 in UTC: out of range, not a panic.
    let t = t
        .checked_to_offset(time::UtcOffset::UTC)
        .filter(|t| (MIN_YEAR..=MAX_YEAR).contains(&t.year()))
        .ok_or_else(|| {
            invalid(format!(
                "{attr} compares with a dateTime from year {MIN_YEAR} to {MAX_YEAR} in UTC, not \
                 {s:?}"
            ))
        })?;
    Ok(PrimitiveDateTime::new(t.date(), t.time()))
}

/// `%`, `_` and `\` are literal in SCIM values.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn pattern(op: &CompareOp, v: &str) -> Option<String> {
    let v = escape_like(v);
    match op {
        CompareOp::Co => Some(format!("%{v}%")),
        CompareOp::Sw => Some(format!("{v}%")),
        CompareOp::Ew => Some(format!("%{v}")),
        _ => None,
    }
}

fn ordering(op: &CompareOp) -> bool {
    matches!(
        op,
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
    )
}

fn symbol(op: &CompareOp) -> &'static str {
    match op {
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        _ => "=",
    }
}

/// The attribute as written in the filter, for messages.
fn shown(path: &AttrPath) -> String {
    path.to_string()
}

// ---------------------------------------------------------------------------------------------
// The compiler.

struct Compiler<'t> {
    backend: Backend,
    tenant_id: &'t str,
    aliases: usize,
    /// Counted while compiling (a `Cell`: the leaf builders take `&self`).
    terms: Cell<usize>,
    correlated: Cell<usize>,
    subqueries: Cell<usize>,
    patterns: Cell<usize>,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get().saturating_add(1));
}

/// What one attribute path names on a user or a group.
enum Target {
    Column(Column),
    /// A boolean column.
    Bool(&'static str),
    Time(&'static str),
    /// `name`: the six name columns (`pr` only).
    Name,
    /// `emails` / `emails.value`: the `user_emails` index.
    EmailValue,
    /// A JSON value: where the walk starts, its steps, the kind of the node reached.
    Json {
        input: Input,
        steps: Vec<Step>,
        kind: Kind,
    },
    /// A complex attribute of the `attributes` document that has a `value`: present as a
    /// whole, compared through its `value`s (`phoneNumbers co "555"`).
    JsonWithValue {
        whole: Vec<Step>,
        values: Vec<Step>,
        kind: Kind,
    },
    /// Rows related to the resource (`groups.*`, `members.*`): the SQL that selects the
    /// resource's ids among them (`… WHERE gm.tenant_id = ? AND `), the column, and whether the
    /// join is needed.
    Related {
        relation: Relation,
        column: Option<Column>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// A user's groups.
    Memberships,
    /// A group's members.
    Members,
}

impl<'t> Compiler<'t> {
    fn new(backend: Backend, tenant_id: &'t str) -> Self {
        Compiler {
            backend,
            tenant_id,
            aliases: 0,
            terms: Cell::new(0),
            correlated: Cell::new(0),
            subqueries: Cell::new(0),
            patterns: Cell::new(0),
        }
    }

    fn cost(&self) -> Cost {
        Cost {
            terms: self.terms.get(),
            correlated: self.correlated.get(),
            subqueries: self.subqueries.get(),
            patterns: self.patterns.get(),
        }
    }

    /// A subquery run for every row.
    fn correlated_subquery(&self) {
        bump(&self.correlated);
        bump(&self.subqueries);
    }

    /// On SQLite, `cond` checked against the job's deadline row by row (see
    /// `storage::deadline`); PostgreSQL bounds the statement itself.
    fn bounded(&self, cond: Cond) -> Cond {
        if self.pg() {
            cond
        } else {
            Cond::sql(format!("({} AND ", super::deadline::SQL))
                .then(cond)
                .push(")")
        }
    }

    fn pg(&self) -> bool {
        self.backend == Backend::Postgres
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("j{}", self.aliases)
    }

    fn filter(&mut self, f: &Filter, r: Resource) -> Result<Cond, DomainError> {
        Ok(match f {
            Filter::Attr(exp) => self.attr_exp(exp, r)?,
            Filter::Not(inner) => self.filter(inner, r)?.not(),
            Filter::And(items) => Cond::and(
                items
                    .as_slice()
                    .iter()
                    .map(|i| self.filter(i, r))
                    .collect::<Result<_, _>>()?,
            ),
            Filter::Or(items) => Cond::or(
                items
                    .as_slice()
                    .iter()
                    .map(|i| self.filter(i, r))
                    .collect::<Result<_, _>>()?,
            ),
            Filter::ValuePath(vp) => self.value_path(vp, r)?,
        })
    }

    /// `pr`, comparisons, `ne` as `not eq`, `eq null` as `not pr`.
    fn attr_exp(&mut self, exp: &AttrExp, r: Resource) -> Result<Cond, DomainError> {
        bump(&self.terms);
        match exp {
            AttrExp::Present(path) => {
                let target = self.resolve(path, r)?;
                self.present(target)
            }
            AttrExp::Comparison(path, op, value) => {
                let target = self.resolve(path, r)?;
                self.compare(target, &shown(path), op, value)
            }
        }
    }

    fn compare(
        &mut self,
        target: Target,
        attr: &str,
        op: &CompareOp,
        value: &CompValue,
    ) -> Result<Cond, DomainError> {
        if matches!(value, CompValue::Null) {
            return match op {
                CompareOp::Eq => Ok(self.present(target)?.not()),
                CompareOp::Ne => self.present(target),
                _ => Err(invalid(format!("{attr} {op} null is not a comparison"))),
            };
        }
        if matches!(op, CompareOp::Ne) {
            return Ok(self.compare(target, attr, &CompareOp::Eq, value)?.not());
        }
        Ok(match target {
            Target::Column(c) => self.column_cmp(&c, op, string_value(attr, value)?),
            Target::Bool(col) => {
                let b = bool_value(attr, value)?;
                if !matches!(op, CompareOp::Eq) {
                    return Err(invalid(format!(
                        "{op} does not apply to the boolean {attr}"
                    )));
                }
                match (b, col == ACTIVE) {
                    (true, _) => Cond::sql(col),
                    // An unassigned `active` (stored false) is absent, not false.
                    (false, true) => Cond::sql(format!("(NOT {col} AND {ACTIVE_ASSIGNED})")),
                    (false, false) => Cond::sql(format!("NOT {col}")),
                }
            }
            Target::Time(col) => {
                let t = time_value(attr, value)?;
                if !matches!(op, CompareOp::Eq) && !ordering(op) {
                    return Err(invalid(format!(
                        "{op} does not apply to the dateTime {attr}"
                    )));
                }
                Cond::sql(format!("{col} {} ", symbol(op))).time(t)
            }
            Target::Name => {
                return Err(invalid(format!(
                    "{attr} is complex: compare one of its sub-attributes"
                )));
            }
            Target::EmailValue => {
                let v = string_value(attr, value)?;
                bump(&self.subqueries);
                Cond::sql("\"users\".\"id\" IN (SELECT ue.user_id FROM \"user_emails\" ue WHERE ue.tenant_id = ")
                    .text(self.tenant_id.to_owned())
                    .push(" AND ")
                    .then(self.column_cmp(&column("ue.value_lower", Fold::Stored, false), op, v))
                    .push(")")
            }
            Target::Json { input, steps, kind } => {
                let leaf = |this: &Self, alias: &str| this.json_leaf(kind, alias, attr, op, value);
                self.json_exists(&input, &steps, leaf)?
            }
            Target::JsonWithValue { values, kind, .. } => {
                let leaf = |this: &Self, alias: &str| this.json_leaf(kind, alias, attr, op, value);
                self.json_exists(&Input::Column("attributes"), &values, leaf)?
            }
            Target::Related { relation, column } => {
                let Some(c) = column else {
                    return Err(invalid(format!(
                        "{attr} is complex: compare one of its sub-attributes"
                    )));
                };
                let cond = self.column_cmp(&c, op, string_value(attr, value)?);
                self.related(relation, Some(cond))
            }
        })
    }

    fn present(&mut self, target: Target) -> Result<Cond, DomainError> {
        Ok(match target {
            Target::Column(c) => {
                if c.nullable {
                    Cond::sql(format!("({0} IS NOT NULL AND {0} <> '')", c.sql))
                } else {
                    Cond::sql(format!("{} <> ''", c.sql))
                }
            }
            Target::Bool(ACTIVE) => Cond::sql(ACTIVE_ASSIGNED),
            Target::Bool(_) | Target::Time(_) => Cond::always(true),
            Target::Name => Cond::or(
                [
                    "name_formatted",
                    "family_name",
                    "given_name",
                    "middle_name",
                    "honorific_prefix",
                    "honorific_suffix",
                ]
                .iter()
                .map(|c| {
                    Cond::sql(format!(
                        "(\"users\".\"{c}\" IS NOT NULL AND \"users\".\"{c}\" <> '')"
                    ))
                })
                .collect(),
            ),
            // Every stored address has a non-empty value.
            Target::EmailValue => {
                bump(&self.subqueries);
                Cond::sql(
                    "\"users\".\"id\" IN (SELECT ue.user_id FROM \"user_emails\" ue WHERE ue.tenant_id = ",
                )
                .text(self.tenant_id.to_owned())
                .push(")")
            }
            Target::Json { input, steps, .. } => {
                self.json_exists(&input, &steps, |this, alias| Ok(this.node_present(alias)))?
            }
            Target::JsonWithValue { whole, .. } => {
                self.json_exists(&Input::Column("attributes"), &whole, |this, alias| {
                    Ok(this.node_present(alias))
                })?
            }
            // Group ids, display names and member ids are never empty.
            Target::Related { relation, .. } => self.related(relation, None),
        })
    }

    /// A comparison (not `ne`) on a text column.
    fn column_cmp(&self, c: &Column, op: &CompareOp, v: &str) -> Cond {
        let cmp = self.text_cmp(&c.sql, c.fold, op, v);
        if c.nullable {
            Cond::sql(format!("({} IS NOT NULL AND ", c.sql))
                .then(cmp)
                .push(")")
        } else {
            cmp
        }
    }

    /// `lhs <op> ?` on text (not `ne`), with LIKE patterns for `co`/`sw`/`ew`.
    fn text_cmp(&self, lhs: &str, fold: Fold, op: &CompareOp, v: &str) -> Cond {
        let (lhs, open, close, value) = match fold {
            Fold::Exact => (lhs.to_owned(), "", "", v.to_owned()),
            Fold::Lower => (format!("lower({lhs})"), "lower(", ")", v.to_owned()),
            // The stored keys are `domain::name_key`s: equality compares whole keys, patterns
            // and ordering the normalised, lower-cased text.
            Fold::Stored if matches!(op, CompareOp::Eq) => {
                (lhs.to_owned(), "", "", crate::domain::name_key(v))
            }
            Fold::Stored => (lhs.to_owned(), "", "", crate::domain::folded(v)),
        };
        match pattern(op, &value) {
            Some(p) => {
                bump(&self.patterns);
                Cond::sql(format!("{lhs} LIKE {open}"))
                    .text(p)
                    .push(format!("{close} ESCAPE '\\'"))
            }
            None => {
                // Byte order on PostgreSQL too, whatever the database's collation.
                let collate = if ordering(op) && self.pg() {
                    " COLLATE \"C\""
                } else {
                    ""
                };
                Cond::sql(format!("{lhs}{collate} {} {open}", symbol(op)))
                    .text(value)
                    .push(close)
            }
        }
    }

    /// `resource id IN (the related rows, filtered)`.
    fn related(&self, relation: Relation, cond: Option<Cond>) -> Cond {
        bump(&self.subqueries);
        let head = match relation {
            Relation::Memberships => {
                "\"users\".\"id\" IN (SELECT gm.user_id FROM \"group_members\" gm \
                 JOIN \"groups\" g ON g.tenant_id = gm.tenant_id AND g.id = gm.group_id \
                 WHERE gm.tenant_id = "
            }
            Relation::Members => {
                "\"groups\".\"id\" IN (SELECT gm.group_id FROM \"group_members\" gm \
                 JOIN \"users\" u ON u.tenant_id = gm.tenant_id AND u.id = gm.user_id \
                 WHERE gm.tenant_id = "
            }
        };
        let mut out = Cond::sql(head).text(self.tenant_id.to_owned());
        if let Some(cond) = cond {
            out = out.push(" AND (").then(cond).push(")");
        }
        out.push(")")
    }

    // --- JSON ---------------------------------------------------------------------------

    /// `EXISTS (SELECT 1 FROM <walk> WHERE <keys match> AND <leaf>)`.
    fn json_exists(
        &mut self,
        input: &Input,
        steps: &[Step],
        leaf: impl FnOnce(&Self, &str) -> Result<Cond, DomainError>,
    ) -> Result<Cond, DomainError> {
        let (from, conds, alias) = self.json_walk(input, steps);
        let tail = leaf(self, &alias)?;
        Ok(self.exists(from, conds, tail))
    }

    /// A subquery over JSON nodes, run for every row (and on SQLite checked against the
    /// deadline for every node).
    fn exists(&self, from: Vec<String>, conds: Vec<String>, tail: Cond) -> Cond {
        self.correlated_subquery();
        let mut out = Cond::sql(format!("EXISTS (SELECT 1 FROM {} WHERE ", from.join(", ")));
        if !self.pg() {
            out = out.push(super::deadline::SQL).push(" AND ");
        }
        for c in conds {
            out = out.push(c).push(" AND ");
        }
        out.then(tail).push(")")
    }

    /// The FROM items and conditions that walk `steps` from `input`, and the alias of the
    /// node reached.
    fn json_walk(&mut self, input: &Input, steps: &[Step]) -> (Vec<String>, Vec<String>, String) {
        let pg = self.pg();
        let mut from = Vec::new();
        let mut conds = Vec::new();
        let mut current = input.clone();
        for step in steps {
            let alias = self.alias();
            let source = match (&current, step, pg) {
                (Input::Column(col), _, false) => format!("\"users\".\"{col}\""),
                (Input::Column(col), _, true) => format!("\"users\".\"{col}\"::jsonb"),
                (Input::Node(p), Step::Key(_), false) => {
                    format!("CASE {p}.type WHEN 'object' THEN {p}.value ELSE '{{}}' END")
                }
                (Input::Node(p), Step::Key(_), true) => {
                    format!(
                        "CASE jsonb_typeof({p}.v) WHEN 'object' THEN {p}.v ELSE '{{}}'::jsonb END"
                    )
                }
                (Input::Node(p), Step::Elements, false) => format!(
                    "CASE {p}.type WHEN 'array' THEN {p}.value \
                     WHEN 'object' THEN json_array(json({p}.value)) ELSE '[]' END"
                ),
                (Input::Node(p), Step::Elements, true) => format!(
                    "CASE jsonb_typeof({p}.v) WHEN 'array' THEN {p}.v \
                     WHEN 'object' THEN jsonb_build_array({p}.v) ELSE '[]'::jsonb END"
                ),
            };
            match (step, pg) {
                (Step::Key(k), false) => {
                    from.push(format!("json_each({source}) AS {alias}"));
                    conds.push(format!("lower({alias}.key) = '{k}'"));
                }
                (Step::Key(k), true) => {
                    from.push(format!("jsonb_each({source}) AS {alias}(k, v)"));
                    conds.push(format!("lower({alias}.k) = '{k}'"));
                }
                (Step::Elements, false) => from.push(format!("json_each({source}) AS {alias}")),
                (Step::Elements, true) => {
                    from.push(format!("jsonb_array_elements({source}) AS {alias}(v)"));
                }
            }
            current = Input::Node(alias);
        }
        let alias = match current {
            Input::Node(a) => a,
            Input::Column(_) => String::new(),
        };
        (from, conds, alias)
    }

    /// Whether the node is a non-empty value.
    fn node_present(&self, a: &str) -> Cond {
        if self.pg() {
            Cond::sql(format!(
                "{a}.v NOT IN ('null'::jsonb, '\"\"'::jsonb, '[]'::jsonb, '{{}}'::jsonb)"
            ))
        } else {
            Cond::sql(format!(
                "({a}.type <> 'null' AND NOT ({a}.type = 'text' AND {a}.value = '') \
                 AND NOT ({a}.type IN ('array', 'object') AND json({a}.value) IN ('[]', '{{}}')))"
            ))
        }
    }

    /// A comparison (not `ne`, not null) of a JSON node of `kind`.
    fn json_leaf(
        &self,
        kind: Kind,
        a: &str,
        attr: &str,
        op: &CompareOp,
        value: &CompValue,
    ) -> Result<Cond, DomainError> {
        match kind {
            Kind::Str { exact } => {
                let v = string_value(attr, value)?;
                let fold = if exact { Fold::Exact } else { Fold::Lower };
                let (is_string, text) = if self.pg() {
                    (
                        format!("jsonb_typeof({a}.v) = 'string'"),
                        format!("({a}.v #>> '{{}}')"),
                    )
                } else {
                    (format!("{a}.type = 'text'"), format!("{a}.value"))
                };
                Ok(Cond::sql(format!("({is_string} AND "))
                    .then(self.text_cmp(&text, fold, op, v))
                    .push(")"))
            }
            Kind::Bool => {
                let b = bool_value(attr, value)?;
                if !matches!(op, CompareOp::Eq) {
                    return Err(invalid(format!(
                        "{op} does not apply to the boolean {attr}"
                    )));
                }
                Ok(Cond::sql(if self.pg() {
                    format!("{a}.v = '{b}'::jsonb")
                } else {
                    format!("{a}.type = '{b}'")
                }))
            }
            Kind::Binary => Err(invalid(format!("{attr} is binary: only pr applies to it"))),
            Kind::Complex(_) => Err(invalid(format!(
                "{attr} is complex: compare one of its sub-attributes"
            ))),
        }
    }

    // --- Resolving names ------------------------------------------------------------------

    fn resolve(&self, path: &AttrPath, r: Resource) -> Result<Target, DomainError> {
        match r {
            Resource::User => self.resolve_user(path),
            Resource::Group => resolve_group(path),
        }
    }

    fn resolve_user(&self, path: &AttrPath) -> Result<Target, DomainError> {
        let unknown = || invalid(format!("cannot filter users on {}", shown(path)));
        let name = path.name.to_ascii_lowercase();
        let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
        match path.uri.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some(USER_URN) => {}
            Some(ROSTER_URN) => {
                return match (name.as_str(), sub) {
                    ("role", None) => Ok(Target::Column(column(
                        "\"users\".\"role\"",
                        Fold::Lower,
                        true,
                    ))),
                    // Computed as `User::effective_role` does: the user's own role, else its
                    // mapped group's with the lowest priority (ties: lowest group id), else the
                    // tenant's default.
                    ("effectiverole", None) => Ok(Target::Column({
                        self.correlated_subquery();
                        column(
                            &format!(
                                "COALESCE(\"users\".\"role\", (SELECT gr.role {MAPPED_GROUPS} \
                             ORDER BY gr.priority, gr.group_id LIMIT 1), (SELECT t.default_role \
                             FROM \"tenants\" t WHERE t.id = \"users\".\"tenant_id\"))"
                            ),
                            Fold::Lower,
                            false,
                        )
                    })),
                    ("rolesource", None) => Ok(Target::Column({
                        self.correlated_subquery();
                        column(
                            &format!(
                                "(CASE WHEN \"users\".\"role\" IS NOT NULL THEN 'attribute' \
                             WHEN EXISTS (SELECT 1 {MAPPED_GROUPS}) THEN 'group' \
                             ELSE 'default' END)"
                            ),
                            Fold::Lower,
                            false,
                        )
                    })),
                    _ => Err(unknown()),
                };
            }
            Some(ENTERPRISE_URN) => {
                let attr = ENTERPRISE_JSON
                    .iter()
                    .find(|a| a.name == name)
                    .ok_or_else(unknown)?;
                return json_target(path, vec![Step::Key(ENTERPRISE_URN)], attr, sub.as_deref());
            }
            Some(uri) => {
                return Err(invalid(format!("filtering on {uri} is not supported")));
            }
        }
        let col = |c: &str, fold, nullable| {
            Target::Column(column(&format!("\"users\".\"{c}\""), fold, nullable))
        };
        Ok(match (name.as_str(), sub.as_deref()) {
            ("id", None) => col("id", Fold::Exact, false),
            ("username", None) => col("user_name_lower", Fold::Stored, false),
            ("externalid", None) => col("external_id", Fold::Exact, true),
            ("displayname", None) => col("display_name", Fold::Lower, true),
            ("nickname", None) => col("nick_name", Fold::Lower, true),
            ("title", None) => col("title", Fold::Lower, true),
            ("usertype", None) => col("user_type", Fold::Lower, true),
            ("locale", None) => col("locale", Fold::Lower, true),
            ("preferredlanguage", None) => col("preferred_language", Fold::Lower, true),
            ("timezone", None) => col("timezone", Fold::Lower, true),
            ("profileurl", None) => col("profile_url", Fold::Lower, true),
            ("name", None) => Target::Name,
            ("name", Some(part)) => {
                let c = match part {
                    "formatted" => "name_formatted",
                    "familyname" => "family_name",
                    "givenname" => "given_name",
                    "middlename" => "middle_name",
                    "honorificprefix" => "honorific_prefix",
                    "honorificsuffix" => "honorific_suffix",
                    _ => return Err(unknown()),
                };
                col(c, Fold::Lower, true)
            }
            ("active", None) => Target::Bool(ACTIVE),
            ("meta", Some("created")) => Target::Time("\"users\".\"created_at\""),
            ("meta", Some("lastmodified")) => Target::Time("\"users\".\"updated_at\""),
            ("emails", None | Some("value")) => Target::EmailValue,
            ("emails", Some(s)) => {
                let s = find_sub(EMAILS, s).ok_or_else(unknown)?;
                Target::Json {
                    input: Input::Column("emails"),
                    steps: vec![Step::Elements, Step::Key(s.name)],
                    kind: s.kind,
                }
            }
            ("groups", None) => Target::Related {
                relation: Relation::Memberships,
                column: membership_column("value"),
            },
            ("groups", Some(s)) => Target::Related {
                relation: Relation::Memberships,
                column: Some(membership_column(s).ok_or_else(unknown)?),
            },
            (other, sub) => {
                let attr = CORE_JSON
                    .iter()
                    .find(|a| a.name == other)
                    .ok_or_else(unknown)?;
                json_target(path, Vec::new(), attr, sub)?
            }
        })
    }

    // --- Value filters --------------------------------------------------------------------

    fn value_path(&mut self, vp: &ValuePath, r: Resource) -> Result<Cond, DomainError> {
        let attr = shown(&vp.attr);
        let not_multi = || {
            invalid(format!(
                "{attr}[...]: value filters apply to multi-valued or complex attributes"
            ))
        };
        if vp.attr.sub_attr.is_some() {
            return Err(not_multi());
        }
        let name = vp.attr.name.to_ascii_lowercase();
        let uri = vp.attr.uri.as_deref().map(str::to_ascii_lowercase);
        match (r, uri.as_deref(), name.as_str()) {
            (Resource::User, None | Some(USER_URN), "emails") => {
                let (from, conds, alias) =
                    self.json_walk(&Input::Column("emails"), &[Step::Elements]);
                let elements = Elements::Json {
                    alias,
                    subs: EMAILS,
                };
                let inner = self.val_filter(&vp.filter, &elements, &attr)?;
                let json = self.exists(from, conds, inner);
                // The index finds the candidates; the JSON check holds on one address.
                let mut indexed = Vec::new();
                for v in indexed_email_values(&vp.filter) {
                    indexed.push(self.compare(
                        Target::EmailValue,
                        &attr,
                        &CompareOp::Eq,
                        &CompValue::Str(v.to_owned()),
                    )?);
                }
                indexed.push(json);
                Ok(Cond::and(indexed))
            }
            (Resource::User, None | Some(USER_URN), "groups") => {
                let inner =
                    self.val_filter(&vp.filter, &Elements::Rows(membership_column), &attr)?;
                Ok(self.related(Relation::Memberships, Some(inner)))
            }
            (Resource::Group, None | Some(GROUP_URN), "members") => {
                let inner = self.val_filter(&vp.filter, &Elements::Rows(member_column), &attr)?;
                Ok(self.related(Relation::Members, Some(inner)))
            }
            (Resource::User, None | Some(USER_URN) | Some(ENTERPRISE_URN), _) => {
                let (prefix, catalog) = if uri.as_deref() == Some(ENTERPRISE_URN) {
                    (vec![Step::Key(ENTERPRISE_URN)], ENTERPRISE_JSON)
                } else {
                    (Vec::new(), CORE_JSON)
                };
                let Some(json) = catalog.iter().find(|a| a.name == name) else {
                    return match self.resolve_user(&vp.attr) {
                        Err(e) => Err(e),
                        Ok(_) => Err(not_multi()),
                    };
                };
                let Kind::Complex(subs) = json.kind else {
                    return Err(not_multi());
                };
                let mut steps = prefix;
                steps.push(Step::Key(json.name));
                if json.multi {
                    steps.push(Step::Elements);
                }
                let (from, conds, alias) = self.json_walk(&Input::Column("attributes"), &steps);
                let inner = self.val_filter(&vp.filter, &Elements::Json { alias, subs }, &attr)?;
                Ok(self.exists(from, conds, inner))
            }
            (Resource::Group, None | Some(GROUP_URN), _) => match resolve_group(&vp.attr) {
                Err(e) => Err(e),
                Ok(_) => Err(not_multi()),
            },
            (_, Some(other), _) => Err(invalid(format!("filtering on {other} is not supported"))),
        }
    }

    /// The inner filter of `attr[...]`, over one element.
    fn val_filter(
        &mut self,
        f: &ValFilter,
        elements: &Elements,
        attr: &str,
    ) -> Result<Cond, DomainError> {
        Ok(match f {
            ValFilter::Not(inner) => self.val_filter(inner, elements, attr)?.not(),
            ValFilter::And(items) => Cond::and(
                items
                    .as_slice()
                    .iter()
                    .map(|i| self.val_filter(i, elements, attr))
                    .collect::<Result<_, _>>()?,
            ),
            ValFilter::Or(items) => Cond::or(
                items
                    .as_slice()
                    .iter()
                    .map(|i| self.val_filter(i, elements, attr))
                    .collect::<Result<_, _>>()?,
            ),
            ValFilter::Attr(exp) => {
                bump(&self.terms);
                let path = match exp {
                    AttrExp::Present(p) | AttrExp::Comparison(p, _, _) => p,
                };
                let unknown = || {
                    invalid(format!(
                        "{attr}[...] cannot filter on {}: name a sub-attribute of {attr}",
                        shown(path)
                    ))
                };
                if path.uri.is_some() || path.sub_attr.is_some() {
                    return Err(unknown());
                }
                let target = match elements {
                    Elements::Json { alias, subs } => {
                        let s = find_sub(subs, &path.name).ok_or_else(unknown)?;
                        Target::Json {
                            input: Input::Node(alias.clone()),
                            steps: vec![Step::Key(s.name)],
                            kind: s.kind,
                        }
                    }
                    Elements::Rows(columns) => {
                        Target::Column(columns(&path.name).ok_or_else(unknown)?)
                    }
                };
                let shown = format!("{attr}.{}", path.name);
                match exp {
                    AttrExp::Present(_) => self.present(target)?,
                    AttrExp::Comparison(_, op, value) => self.compare(target, &shown, op, value)?,
                }
            }
        })
    }
}

/// The `value eq "…"` terms that every element matching `f` must satisfy (the top-level
/// conjunction of an `emails[...]` filter): an index lookup narrows the users to those.
fn indexed_email_values(f: &ValFilter) -> Vec<&str> {
    match f {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(v)))
            if path.uri.is_none()
                && path.sub_attr.is_none()
                && path.name.eq_ignore_ascii_case("value") =>
        {
            vec![v.as_str()]
        }
        ValFilter::And(items) => items
            .as_slice()
            .iter()
            .flat_map(indexed_email_values)
            .collect(),
        _ => Vec::new(),
    }
}

/// An attribute of the `attributes` document, with its optional sub-attribute.
fn json_target(
    path: &AttrPath,
    mut steps: Vec<Step>,
    attr: &'static JsonAttr,
    sub: Option<&str>,
) -> Result<Target, DomainError> {
    steps.push(Step::Key(attr.name));
    let sub = match (sub, attr.kind) {
        (None, _) => None,
        (Some(s), Kind::Complex(subs)) => Some(
            find_sub(subs, s)
                .ok_or_else(|| invalid(format!("cannot filter users on {}", shown(path))))?,
        ),
        (Some(_), _) => {
            return Err(invalid(format!(
                "cannot filter users on {}: {} has no sub-attributes",
                shown(path),
                path.name
            )));
        }
    };
    if let (None, Kind::Complex(subs)) = (sub, attr.kind)
        && let Some(value) = find_sub(subs, "value")
    {
        let whole = steps.clone();
        if attr.multi {
            steps.push(Step::Elements);
        }
        steps.push(Step::Key(value.name));
        return Ok(Target::JsonWithValue {
            whole,
            values: steps,
            kind: value.kind,
        });
    }
    let kind = match sub {
        Some(s) => {
            if attr.multi {
                steps.push(Step::Elements);
            }
            steps.push(Step::Key(s.name));
            s.kind
        }
        None => attr.kind,
    };
    Ok(Target::Json {
        input: Input::Column("attributes"),
        steps,
        kind,
    })
}

fn resolve_group(path: &AttrPath) -> Result<Target, DomainError> {
    let unknown = || invalid(format!("cannot filter groups on {}", shown(path)));
    match path.uri.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some(GROUP_URN) => {}
        Some(uri) => return Err(invalid(format!("filtering on {uri} is not supported"))),
    }
    let name = path.name.to_ascii_lowercase();
    let sub = path.sub_attr.as_deref().map(str::to_ascii_lowercase);
    Ok(match (name.as_str(), sub.as_deref()) {
        ("id", None) => Target::Column(column("\"groups\".\"id\"", Fold::Exact, false)),
        ("displayname", None) => Target::Column(column(
            "\"groups\".\"display_name_lower\"",
            Fold::Stored,
            false,
        )),
        ("externalid", None) => {
            Target::Column(column("\"groups\".\"external_id\"", Fold::Exact, true))
        }
        ("meta", Some("created")) => Target::Time("\"groups\".\"created_at\""),
        ("meta", Some("lastmodified")) => Target::Time("\"groups\".\"updated_at\""),
        ("members", None) => Target::Related {
            relation: Relation::Members,
            column: member_column("value"),
        },
        ("members", Some(s)) => Target::Related {
            relation: Relation::Members,
            column: Some(member_column(s).ok_or_else(unknown)?),
        },
        _ => return Err(unknown()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_okta_and_entra_filters() {
        for f in [
            r#"userName eq "ada@example.com""#,
            r#"externalId eq "00u1abc""#,
            r#"displayName eq "Engineering""#,
            r#"USERNAME EQ "x" and active eq true"#,
            r#"emails.value co "@example.com""#,
        ] {
            assert!(matches!(parse(f), Ok(Some(_))), "{f}");
        }
        assert!(matches!(parse("  "), Ok(None)));
    }

    #[test]
    fn parse_rejects_bad_syntax_with_invalid_filter() {
        for f in [
            r#"userName eq"#,
            r#"userName zz "x""#,
            "(((",
            &"a".repeat(9000),
        ] {
            match parse(f) {
                Err(DomainError::Invalid { scim_type, .. }) => {
                    assert_eq!(scim_type, ScimType::InvalidFilter, "{f}")
                }
                other => panic!("{f}: {other:?}"),
            }
        }
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        assert_eq!(pattern(&CompareOp::Sw, "ab").as_deref(), Some("ab%"));
    }

    fn compile(f: &str, r: Resource, backend: Backend) -> Result<Cond, DomainError> {
        let f = parse(f).unwrap().unwrap();
        Compiler::new(backend, "t1").filter(&f, r)
    }

    fn sql_text(c: &Cond) -> String {
        c.parts
            .iter()
            .map(|p| match p {
                Part::Sql(s) => s.clone(),
                Part::Text(_) | Part::Time(_) => "?".to_owned(),
            })
            .collect()
    }

    #[test]
    fn values_are_bound_never_written_into_the_sql() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            for f in [
                r#"title eq "x' OR 1=1 --""#,
                r#"phoneNumbers[type eq "x' OR 1=1 --"]"#,
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co "x' OR 1=1 --""#,
                r#"emails[value eq "x' OR 1=1 --" and type eq "work"]"#,
                r#"groups.display sw "x' OR 1=1 --""#,
            ] {
                let c = compile(f, Resource::User, backend).unwrap();
                let sql = sql_text(&c);
                assert!(!sql.contains("OR 1=1"), "{f}: {sql}");
                assert!(
                    c.parts
                        .iter()
                        .any(|p| matches!(p, Part::Text(t) if t.to_uppercase().contains("OR 1=1"))),
                    "{f}"
                );
            }
        }
    }

    #[test]
    fn unknown_attributes_and_inapplicable_comparisons_are_invalid_filters() {
        for (f, r) in [
            (r#"noSuch eq "x""#, Resource::User),
            (r#"emails.noSuch eq "x""#, Resource::User),
            (r#"phoneNumbers.locality eq "x""#, Resource::User),
            (r#"addresses eq "x""#, Resource::User),
            (r#"name eq "x""#, Resource::User),
            (r#"active gt true"#, Resource::User),
            (r#"active eq "maybe""#, Resource::User),
            (r#"emails.primary co "t""#, Resource::User),
            (r#"meta.created co "2024""#, Resource::User),
            (r#"meta.created gt "yesterday""#, Resource::User),
            (r#"title eq 12"#, Resource::User),
            (r#"x509Certificates.value eq "AAAA""#, Resource::User),
            (r#"title[value eq "x"]"#, Resource::User),
            (r#"emails[noSuch eq "x"]"#, Resource::User),
            (r#"emails[emails.type eq "x"]"#, Resource::User),
            (
                r#"urn:example:custom:2.0:User:thing eq "x""#,
                Resource::User,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:shoeSize eq "x""#,
                Resource::User,
            ),
            (r#"title gt null"#, Resource::User),
            (r#"title eq "a\u0000b""#, Resource::User),
            (r#"emails[type eq "\u0000"]"#, Resource::User),
            (r#"meta.created gt "\u0000""#, Resource::User),
            (r#"members.display co "\u0000""#, Resource::Group),
            (r#"members.noSuch eq "x""#, Resource::Group),
            (r#"members[noSuch eq "x"]"#, Resource::Group),
            (r#"userName eq "x""#, Resource::Group),
            (r#"emails[type eq "work"]"#, Resource::Group),
        ] {
            match compile(f, r, Backend::Sqlite) {
                Err(DomainError::Invalid { scim_type, detail }) => {
                    assert_eq!(scim_type, ScimType::InvalidFilter, "{f}");
                    assert!(!detail.is_empty(), "{f}");
                }
                Err(other) => panic!("{f}: {other:?}"),
                Ok(c) => panic!("{f} compiled: {}", sql_text(&c)),
            }
        }
    }

    #[test]
    fn the_message_names_the_attribute() {
        let Err(DomainError::Invalid { detail, .. }) =
            compile(r#"shoeSize eq "x""#, Resource::User, Backend::Sqlite)
        else {
            panic!("compiled");
        };
        assert!(detail.contains("shoeSize"), "{detail}");
    }

    #[test]
    fn long_chains_stay_shallow() {
        let f = (0..250)
            .map(|i| format!("title pr or id eq \"{i}\""))
            .collect::<Vec<_>>()
            .join(" or ");
        let c = compile(&f, Resource::User, Backend::Sqlite).unwrap();
        let sql = sql_text(&c);
        let mut depth = 0usize;
        let mut max = 0usize;
        for ch in sql.chars() {
            match ch {
                '(' => {
                    depth += 1;
                    max = max.max(depth);
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        assert!(max < 40, "nesting {max}");
    }

    /// The filter compiled as the list queries compile it, with the cost limits.
    fn checked(f: &str, r: Resource, backend: Backend) -> Result<Cond, DomainError> {
        let f = parse(f).unwrap().unwrap();
        match r {
            Resource::User => users(&f, "t1", backend),
            Resource::Group => groups(&f, "t1", backend),
        }
    }

    fn joined(n: usize, term: impl Fn(usize) -> String, op: &str) -> String {
        (0..n).map(term).collect::<Vec<_>>().join(op)
    }

    fn refused_as_too_costly(f: &str, r: Resource, what: &str) {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            match checked(f, r, backend) {
                Err(DomainError::Invalid { scim_type, detail }) => {
                    assert_eq!(scim_type, ScimType::InvalidFilter, "{detail}");
                    assert!(detail.contains("too costly"), "{detail}");
                    assert!(detail.contains(what), "{what}: {detail}");
                }
                other => panic!("{}: {other:?}", &f[..f.len().min(80)]),
            }
        }
    }

    #[test]
    fn value_filters_past_the_limit_are_refused_before_any_sql() {
        // Issue 8 finding 3: 300 value filters compiled to 300 correlated JSON subqueries.
        let f = joined(300, |i| format!("emails[type eq \"w{i}\"]"), " or ");
        assert!(parse(&f).is_ok());
        refused_as_too_costly(&f, Resource::User, "at most 16 are allowed");
        // Each costs two: the value filter, and the test of `type` inside it.
        let at_limit = joined(
            MAX_CORRELATED / 2,
            |i| format!("emails[type eq \"w{i}\"]"),
            " or ",
        );
        checked(&at_limit, Resource::User, Backend::Sqlite).unwrap();
        checked(&at_limit, Resource::User, Backend::Postgres).unwrap();
        let over = joined(
            MAX_CORRELATED + 1,
            |i| format!("emails.type eq \"w{i}\""),
            " or ",
        );
        refused_as_too_costly(&over, Resource::User, "value filters / JSON subqueries");
        let extension = joined(
            MAX_CORRELATED + 1,
            |i| format!("{ENTERPRISE_URN}:department eq \"d{i}\""),
            " and ",
        );
        refused_as_too_costly(&extension, Resource::User, "JSON subqueries");
        let roles = joined(
            MAX_CORRELATED / 2 + 1,
            |_| {
                format!(
                    "{ROSTER_URN}:effectiveRole eq \"admin\" or {ROSTER_URN}:roleSource eq \"group\""
                )
            },
            " or ",
        );
        refused_as_too_costly(&roles, Resource::User, "JSON subqueries");
    }

    #[test]
    fn terms_patterns_and_subqueries_have_their_limits() {
        let terms = joined(MAX_TERMS + 1, |i| format!("id eq \"{i}\""), " or ");
        refused_as_too_costly(&terms, Resource::User, "65 comparisons and presence tests");
        checked(
            &joined(MAX_TERMS, |i| format!("id eq \"{i}\""), " or "),
            Resource::User,
            Backend::Sqlite,
        )
        .unwrap();
        // Terms inside a value filter count too.
        let inner = joined(MAX_TERMS + 1, |i| format!("value eq \"{i}\""), " or ");
        refused_as_too_costly(
            &format!("members[{inner}]"),
            Resource::Group,
            "comparisons and presence tests",
        );
        let patterns = joined(MAX_PATTERNS + 1, |i| format!("title co \"{i}\""), " or ");
        refused_as_too_costly(&patterns, Resource::User, "co/sw/ew comparisons");
        checked(
            &joined(MAX_PATTERNS, |i| format!("title ew \"{i}\""), " or "),
            Resource::User,
            Backend::Postgres,
        )
        .unwrap();
        let lookups = joined(
            MAX_SUBQUERIES + 1,
            |i| format!("members eq \"{i}\""),
            " or ",
        );
        refused_as_too_costly(&lookups, Resource::Group, "subqueries");
        checked(
            &joined(
                MAX_SUBQUERIES,
                |i| format!("groups.value eq \"{i}\""),
                " or ",
            ),
            Resource::User,
            Backend::Sqlite,
        )
        .unwrap();
    }

    #[test]
    fn what_okta_and_entra_send_costs_little() {
        for (f, r) in [
            (r#"userName eq "ada@example.com""#, Resource::User),
            (r#"externalId eq "00u1abc""#, Resource::User),
            (
                r#"emails[type eq "work" and value eq "ada@example.com"]"#,
                Resource::User,
            ),
            (r#"displayName eq "Engineering""#, Resource::Group),
            (r#"id eq "g1" and members eq "u1""#, Resource::Group),
            (r#"members[value eq "u1"]"#, Resource::Group),
        ] {
            let f = parse(f).unwrap().unwrap();
            let mut c = Compiler::new(Backend::Postgres, "t1");
            c.filter(&f, r).unwrap();
            let cost = c.cost();
            assert!(
                cost.terms <= 2 && cost.correlated <= 3 && cost.subqueries <= 4,
                "{cost:?}"
            );
            assert!(cost.check().is_ok());
        }
    }

    #[test]
    fn sqlite_filters_check_the_deadline_for_every_row_and_element() {
        let c = checked(r#"emails[type eq "work"]"#, Resource::User, Backend::Sqlite).unwrap();
        let sql = sql_text(&c);
        assert!(sql.starts_with("(roster_in_time() AND "), "{sql}");
        assert!(
            sql.contains("WHERE roster_in_time() AND "),
            "each JSON subquery checks it too: {sql}"
        );
        let c = checked(
            r#"emails[type eq "work"]"#,
            Resource::User,
            Backend::Postgres,
        )
        .unwrap();
        assert!(!sql_text(&c).contains("roster_in_time"));
    }

    #[test]
    fn out_of_range_date_times_are_invalid_filters_not_panics() {
        // Issue 8 finding 8b: year 10000 in UTC panicked in the offset conversion.
        for v in [
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:30:00-00:31",
            "0000-01-01T00:00:00+01:00",
            "0000-06-01T00:00:00Z",
        ] {
            for attr in ["meta.created", "meta.lastModified"] {
                for op in ["eq", "gt", "le", "ne"] {
                    let f = format!("{attr} {op} \"{v}\"");
                    match checked(&f, Resource::User, Backend::Sqlite) {
                        Err(DomainError::Invalid { scim_type, detail }) => {
                            assert_eq!(scim_type, ScimType::InvalidFilter, "{f}");
                            assert!(detail.contains("year"), "{f}: {detail}");
                        }
                        other => panic!("{f}: {other:?}"),
                    }
                }
            }
        }
        for v in [
            "9999-12-31T23:59:59Z",
            "9999-12-31T23:59:59+01:00",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:59:59-00:01",
        ] {
            let f = format!("meta.created gt \"{v}\"");
            checked(&f, Resource::Group, Backend::Postgres).unwrap();
        }
    }

    #[test]
    fn email_value_filters_use_the_index() {
        let c = compile(
            r#"emails[type eq "work" and value eq "A@x.com"]"#,
            Resource::User,
            Backend::Postgres,
        )
        .unwrap();
        assert!(sql_text(&c).contains("\"user_emails\" ue"));
        assert!(
            c.parts
                .iter()
                .any(|p| matches!(p, Part::Text(t) if t == "a@x.com"))
        );
    }
}
