//! Users: one row each, plus one `user_emails` row per address for lookups.

use std::collections::HashMap;

use diesel::prelude::*;
use time::PrimitiveDateTime;

use diesel::sql_types::{Bool, Nullable, Text};

use super::MultiBackend;
use super::filter;
use super::on_backend;
use super::paging::keyset;
use super::roles;
use super::schema::{group_members, group_roles, groups, user_emails, users};
use super::{CHUNK, DbConnection, TxError, first, new_id, now, unique_violation, utc};
use crate::domain::{
    DomainError, Email, GroupRef, MappedRole, Page, PageRequest, PersonName, Position, ScimType,
    SortAttr, SortValue, User, UserField, UserInput, name_key,
};

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub(crate) struct UserRow {
    pub tenant_id: String,
    pub id: String,
    pub user_name: String,
    pub user_name_lower: String,
    pub external_id: Option<String>,
    pub name_formatted: Option<String>,
    pub family_name: Option<String>,
    pub given_name: Option<String>,
    pub middle_name: Option<String>,
    pub honorific_prefix: Option<String>,
    pub honorific_suffix: Option<String>,
    pub display_name: Option<String>,
    pub nick_name: Option<String>,
    pub profile_url: Option<String>,
    pub title: Option<String>,
    pub user_type: Option<String>,
    pub preferred_language: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub active: bool,
    pub emails: String,
    pub role: Option<String>,
    pub attributes: String,
    pub password_hash: Option<String>,
    pub version: i64,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
    pub active_assigned: bool,
}

/// Every column of a user but its keys and indexed columns, for updates that change none
/// of those.
#[derive(AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
struct UnindexedColumns<'a> {
    name_formatted: Option<&'a str>,
    family_name: Option<&'a str>,
    given_name: Option<&'a str>,
    middle_name: Option<&'a str>,
    honorific_prefix: Option<&'a str>,
    honorific_suffix: Option<&'a str>,
    display_name: Option<&'a str>,
    nick_name: Option<&'a str>,
    profile_url: Option<&'a str>,
    title: Option<&'a str>,
    user_type: Option<&'a str>,
    preferred_language: Option<&'a str>,
    locale: Option<&'a str>,
    timezone: Option<&'a str>,
    active: bool,
    active_assigned: bool,
    emails: &'a str,
    role: Option<&'a str>,
    attributes: &'a str,
    password_hash: Option<&'a str>,
    version: i64,
    updated_at: PrimitiveDateTime,
}

impl<'a> From<&'a UserRow> for UnindexedColumns<'a> {
    fn from(r: &'a UserRow) -> Self {
        UnindexedColumns {
            name_formatted: r.name_formatted.as_deref(),
            family_name: r.family_name.as_deref(),
            given_name: r.given_name.as_deref(),
            middle_name: r.middle_name.as_deref(),
            honorific_prefix: r.honorific_prefix.as_deref(),
            honorific_suffix: r.honorific_suffix.as_deref(),
            display_name: r.display_name.as_deref(),
            nick_name: r.nick_name.as_deref(),
            profile_url: r.profile_url.as_deref(),
            title: r.title.as_deref(),
            user_type: r.user_type.as_deref(),
            preferred_language: r.preferred_language.as_deref(),
            locale: r.locale.as_deref(),
            timezone: r.timezone.as_deref(),
            active: r.active,
            active_assigned: r.active_assigned,
            emails: &r.emails,
            role: r.role.as_deref(),
            attributes: &r.attributes,
            password_hash: r.password_hash.as_deref(),
            version: r.version,
            updated_at: r.updated_at,
        }
    }
}

impl UserRow {
    fn new(
        tenant_id: &str,
        id: String,
        a: &UserInput,
        password_hash: Option<String>,
        version: i64,
        created_at: PrimitiveDateTime,
        updated_at: PrimitiveDateTime,
    ) -> Result<UserRow, DomainError> {
        Ok(UserRow {
            tenant_id: tenant_id.to_owned(),
            id,
            user_name: a.user_name.clone(),
            user_name_lower: name_key(&a.user_name),
            external_id: a.external_id.clone(),
            name_formatted: a.name.formatted.clone(),
            family_name: a.name.family_name.clone(),
            given_name: a.name.given_name.clone(),
            middle_name: a.name.middle_name.clone(),
            honorific_prefix: a.name.honorific_prefix.clone(),
            honorific_suffix: a.name.honorific_suffix.clone(),
            display_name: a.display_name.clone(),
            nick_name: a.nick_name.clone(),
            profile_url: a.profile_url.clone(),
            title: a.title.clone(),
            user_type: a.user_type.clone(),
            preferred_language: a.preferred_language.clone(),
            locale: a.locale.clone(),
            timezone: a.timezone.clone(),
            active: a.active,
            emails: serde_json::to_string(&a.emails).map_err(DomainError::internal)?,
            role: a.role.clone(),
            attributes: a.attributes.clone(),
            password_hash,
            version,
            created_at,
            updated_at,
            active_assigned: a.active_assigned,
        })
    }

    fn into_domain(self, groups: Vec<GroupRef>) -> Result<User, DomainError> {
        let emails: Vec<Email> =
            serde_json::from_str(&self.emails).map_err(DomainError::internal)?;
        Ok(User {
            id: self.id,
            attrs: UserInput {
                user_name: self.user_name,
                external_id: self.external_id,
                name: PersonName {
                    formatted: self.name_formatted,
                    family_name: self.family_name,
                    given_name: self.given_name,
                    middle_name: self.middle_name,
                    honorific_prefix: self.honorific_prefix,
                    honorific_suffix: self.honorific_suffix,
                },
                display_name: self.display_name,
                nick_name: self.nick_name,
                profile_url: self.profile_url,
                title: self.title,
                user_type: self.user_type,
                preferred_language: self.preferred_language,
                locale: self.locale,
                timezone: self.timezone,
                active: self.active,
                active_assigned: self.active_assigned,
                emails,
                role: self.role,
                attributes: self.attributes,
            },
            groups,
            version: self.version,
            created: utc(self.created_at),
            updated: utc(self.updated_at),
        })
    }
}

fn insert_email_keys(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
    keys: &[String],
) -> QueryResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = keys
        .iter()
        .map(|k| {
            (
                user_emails::tenant_id.eq(tenant_id),
                user_emails::value_lower.eq(k),
                user_emails::user_id.eq(user_id),
            )
        })
        .collect();
    for chunk in rows.chunks(CHUNK / 3) {
        on_backend!(conn, |c| diesel::insert_into(user_emails::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Creates a user. `password_hash` is already computed (or `None`).
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    input: &UserInput,
    password_hash: Option<String>,
) -> Result<User, TxError> {
    input.validate()?;
    if let Some(role) = &input.role {
        roles::require(conn, tenant_id, role)?;
    }
    let at = now();
    let row = UserRow::new(tenant_id, new_id(), input, password_hash, 1, at, at)?;
    on_backend!(conn, |c| diesel::insert_into(users::table)
        .values(&row)
        .execute(c))
    .map_err(|e| unique_violation(e, "userName", &input.user_name))?;
    insert_email_keys(conn, tenant_id, &row.id, &input.email_keys())?;
    Ok(row.into_domain(Vec::new())?)
}

/// Whether `id` can name a stored row: ids are UUIDs, and PostgreSQL refuses a NUL in any
/// text (an error, not "no such row"), so an id holding one names nothing.
pub(crate) fn storable_id(id: &str) -> bool {
    !id.contains('\0')
}

fn load_row(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<UserRow>, diesel::result::Error> {
    if !storable_id(id) {
        return Ok(None);
    }
    on_backend!(conn, |c| users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .load(c))
    .map(first)
}

/// The user's row for a write: on PostgreSQL it stays locked (`FOR NO KEY UPDATE`, which
/// foreign-key checks do not wait for) until the transaction ends, so
/// that concurrent writers of one user queue instead of failing their version check and
/// retrying (SQLite has one writer).
fn lock_row(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<UserRow>, diesel::result::Error> {
    match conn {
        DbConnection::Postgres(c) if storable_id(id) => users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq(id))
            .select(UserRow::as_select())
            .for_no_key_update()
            .load(c)
            .map(first),
        _ => load_row(conn, tenant_id, id),
    }
}

/// The groups of each of `user_ids` (one query), ordered by group name.
fn groups_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_ids: &[&str],
) -> QueryResult<HashMap<String, Vec<GroupRef>>> {
    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::new();
    for chunk in user_ids.chunks(CHUNK) {
        let rows: Vec<MembershipRow> = memberships()
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::user_id.eq_any(chunk))
            .select((
                group_members::user_id,
                groups::id,
                groups::display_name,
                group_roles::role.nullable(),
                group_roles::priority.nullable(),
            ))
            .order((group_members::user_id, groups::display_name_lower))
            .load(conn)?;
        for (user_id, id, display_name, role, priority) in rows {
            out.entry(user_id)
                .or_default()
                .push(group_ref(id, display_name, role, priority));
        }
    }
    Ok(out)
}

/// Memberships with their groups and, where mapped, the groups' roles.
#[diesel::dsl::auto_type(no_type_alias)]
fn memberships() -> _ {
    group_members::table
        .inner_join(
            groups::table.on(groups::tenant_id
                .eq(group_members::tenant_id)
                .and(groups::id.eq(group_members::group_id))),
        )
        .left_join(
            group_roles::table.on(group_roles::tenant_id
                .eq(group_members::tenant_id)
                .and(group_roles::group_id.eq(group_members::group_id))),
        )
}

/// (user id, group id, group name, mapped role, its priority)
type MembershipRow = (String, String, String, Option<String>, Option<i64>);

fn group_ref(
    id: String,
    display_name: String,
    role: Option<String>,
    priority: Option<i64>,
) -> GroupRef {
    GroupRef {
        id,
        display_name,
        mapped_role: role
            .zip(priority)
            .map(|(role, priority)| MappedRole { role, priority }),
    }
}

/// The groups of one user (a cacheable statement: no `IN` list).
fn groups_of_one(
    conn: &mut DbConnection,
    tenant_id: &str,
    user_id: &str,
) -> QueryResult<Vec<GroupRef>> {
    let rows: Vec<(String, String, Option<String>, Option<i64>)> =
        on_backend!(conn, |c| memberships()
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::user_id.eq(user_id))
            .select((
                groups::id,
                groups::display_name,
                group_roles::role.nullable(),
                group_roles::priority.nullable(),
            ))
            .order(groups::display_name_lower)
            .load(c))?;
    Ok(rows
        .into_iter()
        .map(|(id, display_name, role, priority)| group_ref(id, display_name, role, priority))
        .collect())
}

pub fn get(conn: &mut DbConnection, tenant_id: &str, id: &str) -> Result<User, DomainError> {
    let row = load_row(conn, tenant_id, id)?.ok_or_else(|| DomainError::not_found("user", id))?;
    let groups = groups_of_one(conn, tenant_id, id)?;
    row.into_domain(groups)
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);

type SortKeyExpr = Box<
    dyn diesel::expression::BoxableExpression<users::table, MultiBackend, SqlType = Nullable<Text>>,
>;

/// What is selected beside each row: the sort key as the database computes it, for the sorts
/// the row alone cannot give (`lower()` of a column is the database's own, which is what the
/// next page's keyset comparison must start from).
fn selected_key(attr: SortAttr) -> SortKeyExpr {
    match attr {
        SortAttr::FamilyName => Box::new(lower(users::family_name)),
        SortAttr::GivenName => Box::new(lower(users::given_name)),
        SortAttr::DisplayName => Box::new(lower(users::display_name)),
        SortAttr::Title => Box::new(lower(users::title)),
        _ => Box::new(None::<String>.into_sql::<Nullable<Text>>()),
    }
}

/// Where `row` stands in a list sorted by `attr`; `selected` is [`selected_key`]'s value.
fn position(row: &UserRow, attr: SortAttr, selected: Option<String>) -> Position {
    let key = match attr {
        SortAttr::Id => SortValue::Null,
        SortAttr::UserName => SortValue::Text(row.user_name_lower.clone()),
        SortAttr::FamilyName | SortAttr::GivenName | SortAttr::DisplayName | SortAttr::Title => {
            selected.map_or(SortValue::Null, SortValue::Text)
        }
        SortAttr::ExternalId => row
            .external_id
            .clone()
            .map_or(SortValue::Null, SortValue::Text),
        SortAttr::Active => SortValue::Bool(row.active),
        SortAttr::Created => SortValue::Time(row.created_at),
        SortAttr::Modified => SortValue::Time(row.updated_at),
    };
    Position {
        key,
        id: row.id.clone(),
    }
}

/// Users strictly after (`after`) or before `at` in the ascending order of `attr`.
fn bound(attr: SortAttr, at: &Position, after: bool) -> Result<SortBound, DomainError> {
    let id = at.id.clone();
    Ok(match attr {
        SortAttr::Id if after => Box::new(users::id.gt(id)),
        SortAttr::Id => Box::new(users::id.lt(id)),
        SortAttr::UserName => {
            keyset::bound!(users::user_name_lower, users::id, text(at)?, id, after)
        }
        SortAttr::FamilyName => {
            keyset::nullable_bound!(
                lower(users::family_name),
                users::id,
                opt_text(at)?,
                id,
                after
            )
        }
        SortAttr::GivenName => {
            keyset::nullable_bound!(
                lower(users::given_name),
                users::id,
                opt_text(at)?,
                id,
                after
            )
        }
        SortAttr::DisplayName => {
            keyset::nullable_bound!(
                lower(users::display_name),
                users::id,
                opt_text(at)?,
                id,
                after
            )
        }
        SortAttr::Title => {
            keyset::nullable_bound!(lower(users::title), users::id, opt_text(at)?, id, after)
        }
        SortAttr::ExternalId => {
            keyset::nullable_bound!(users::external_id, users::id, opt_text(at)?, id, after)
        }
        SortAttr::Active => keyset::bound!(users::active, users::id, flag(at)?, id, after),
        SortAttr::Created => keyset::bound!(users::created_at, users::id, instant(at)?, id, after),
        SortAttr::Modified => keyset::bound!(users::updated_at, users::id, instant(at)?, id, after),
    })
}

type SortBound =
    Box<dyn diesel::expression::BoxableExpression<users::table, MultiBackend, SqlType = Bool>>;

/// Lists users, filtered by a SCIM filter, in the order of `page.sort` (creation order by
/// default), from a keyset position, an offset or the start.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    filter: Option<&filter::Filter>,
    page: &PageRequest,
    known_total: Option<i64>,
) -> Result<Page<User>, DomainError> {
    if page.cursor.is_none()
        && let Some(user_name) =
            filter.and_then(|f| filter::unique_eq(f, filter::Resource::User, "userName"))
    {
        let rows: Vec<UserRow> = on_backend!(conn, |c| users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::user_name_lower.eq(name_key(user_name)))
            .select(UserRow::as_select())
            .load(c))?;
        let total = rows.len() as i64;
        if page.total_only {
            return Ok(Page::total_only(total));
        }
        let rows: Vec<UserRow> = rows
            .into_iter()
            .skip(usize::try_from(page.skip).unwrap_or(0))
            .collect();
        let items = with_groups(conn, tenant_id, rows)?;
        return Ok(Page {
            items,
            next: None,
            previous: None,
            end: None,
            total,
        });
    }
    let attr = page.sort.attr;
    let mut query = users::table
        .filter(users::tenant_id.eq(tenant_id.to_owned()))
        .select((UserRow::as_select(), selected_key(attr)))
        .into_boxed();
    // Compiled once, for the rows and for the count.
    let cond = filter
        .map(|f| filter::users(f, tenant_id, filter::backend(conn)))
        .transpose()?;
    if let Some(c) = &cond {
        query = query.filter(c.clone());
    }
    // A continued page reuses the total counted for the page before it.
    let total: i64 = match known_total {
        Some(total) => total,
        None => {
            let mut count = users::table
                .filter(users::tenant_id.eq(tenant_id.to_owned()))
                .count()
                .into_boxed();
            if let Some(c) = cond {
                count = count.filter(c);
            }
            count.get_result(conn)?
        }
    };
    if page.total_only {
        return Ok(Page::total_only(total));
    }
    // Reading a descending list forward is reading the ascending order backward.
    let ascending = page.sort.descending == page.backward;
    if let Some(at) = &page.cursor {
        query = query.filter(bound(attr, at, ascending)?);
    } else if page.skip > 0 {
        query = query.offset(page.skip);
    }
    query = match attr {
        SortAttr::Id => {
            if ascending {
                query.order(users::id.asc())
            } else {
                query.order(users::id.desc())
            }
        }
        SortAttr::UserName => keyset::order!(query, users::user_name_lower, users::id, ascending),
        SortAttr::FamilyName => {
            keyset::order!(
                query,
                lower(users::family_name),
                users::id,
                ascending,
                nullable
            )
        }
        SortAttr::GivenName => {
            keyset::order!(
                query,
                lower(users::given_name),
                users::id,
                ascending,
                nullable
            )
        }
        SortAttr::DisplayName => {
            keyset::order!(
                query,
                lower(users::display_name),
                users::id,
                ascending,
                nullable
            )
        }
        SortAttr::Title => {
            keyset::order!(query, lower(users::title), users::id, ascending, nullable)
        }
        SortAttr::ExternalId => {
            keyset::order!(query, users::external_id, users::id, ascending, nullable)
        }
        SortAttr::Active => keyset::order!(query, users::active, users::id, ascending),
        SortAttr::Created => keyset::order!(query, users::created_at, users::id, ascending),
        SortAttr::Modified => keyset::order!(query, users::updated_at, users::id, ascending),
    };
    let mut rows: Vec<(UserRow, Option<String>)> = query.limit(page.size + 1).load(conn)?;
    let more = rows.len() as i64 > page.size;
    rows.truncate(usize::try_from(page.size).unwrap_or(0));
    if page.backward {
        if rows.is_empty() {
            // Nothing before the position any more: the first page.
            let first = PageRequest {
                cursor: None,
                backward: false,
                skip: 0,
                ..page.clone()
            };
            return list(conn, tenant_id, filter, &first, Some(total));
        }
        rows.reverse();
    }
    let mut positions = Vec::with_capacity(rows.len());
    let mut user_rows = Vec::with_capacity(rows.len());
    for (row, selected) in rows {
        positions.push(position(&row, attr, selected));
        user_rows.push(row);
    }
    let (first, last) = (positions.first().cloned(), positions.last().cloned());
    let (next, previous) = if page.backward {
        (last.clone(), first.filter(|_| more))
    } else {
        (
            last.clone().filter(|_| more),
            first.filter(|_| page.cursor.is_some() || page.skip > 0),
        )
    };
    let items = with_groups(conn, tenant_id, user_rows)?;
    Ok(Page {
        items,
        next,
        previous,
        end: last,
        total,
    })
}

fn text(at: &Position) -> Result<String, DomainError> {
    match &at.key {
        SortValue::Text(s) => Ok(s.clone()),
        _ => Err(foreign_position()),
    }
}

fn opt_text(at: &Position) -> Result<Option<String>, DomainError> {
    match &at.key {
        SortValue::Null => Ok(None),
        SortValue::Text(s) => Ok(Some(s.clone())),
        _ => Err(foreign_position()),
    }
}

fn flag(at: &Position) -> Result<bool, DomainError> {
    match at.key {
        SortValue::Bool(b) => Ok(b),
        _ => Err(foreign_position()),
    }
}

fn instant(at: &Position) -> Result<PrimitiveDateTime, DomainError> {
    match at.key {
        SortValue::Time(t) => Ok(t),
        _ => Err(foreign_position()),
    }
}

/// A position whose key does not fit the sort (a token of another sort).
pub(crate) fn foreign_position() -> DomainError {
    DomainError::invalid(
        ScimType::InvalidCursor,
        "invalid page token: it was issued for another sort",
    )
}

/// The users of `rows`, each with its groups (one query for the page).
fn with_groups(
    conn: &mut DbConnection,
    tenant_id: &str,
    rows: Vec<UserRow>,
) -> Result<Vec<User>, DomainError> {
    let mut groups = match rows.as_slice() {
        [] => HashMap::new(),
        [one] => HashMap::from([(one.id.clone(), groups_of_one(conn, tenant_id, &one.id)?)]),
        _ => {
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            groups_of(conn, tenant_id, &ids)?
        }
    };
    rows.into_iter()
        .map(|r| {
            let g = groups.remove(&r.id).unwrap_or_default();
            r.into_domain(g)
        })
        .collect()
}

/// What an update asks for.
pub struct UserUpdate<'a> {
    pub id: &'a str,
    pub input: &'a UserInput,
    pub fields: &'a [UserField],
    /// `Some(hash)`: set the password hash; `Some(None)`: clear it.
    pub password_hash: Option<Option<String>>,
    pub expected_version: Option<i64>,
}

/// Applies an update; a change that changes nothing leaves the version and the
/// lastModified time as they were.
pub fn update(
    conn: &mut DbConnection,
    tenant_id: &str,
    upd: &UserUpdate<'_>,
) -> Result<User, TxError> {
    let row =
        lock_row(conn, tenant_id, upd.id)?.ok_or_else(|| DomainError::not_found("user", upd.id))?;
    if let Some(expected) = upd.expected_version
        && expected != row.version
    {
        return Err(DomainError::PreconditionFailed {
            expected: expected.to_string(),
        }
        .into());
    }
    let old_version = row.version;
    let created_at = row.created_at;
    let old_hash = row.password_hash.clone();
    let current = row.into_domain(Vec::new())?;
    let mut next = current.attrs.clone();
    for field in upd.fields {
        field.copy(&mut next, upd.input);
    }
    next.validate()?;
    if let Some(role) = &next.role
        && next.role != current.attrs.role
    {
        roles::require(conn, tenant_id, role)?;
    }
    let new_hash = match &upd.password_hash {
        Some(h) => h.clone(),
        None => old_hash.clone(),
    };
    if next == current.attrs && new_hash == old_hash {
        return Ok(User {
            groups: groups_of_one(conn, tenant_id, upd.id)?,
            ..current
        });
    }
    let row = UserRow::new(
        tenant_id,
        upd.id.to_owned(),
        &next,
        new_hash,
        old_version + 1,
        created_at,
        now(),
    )?;
    let target = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::id.eq(upd.id))
        .filter(users::version.eq(old_version));
    // Columns that are indexed are only written when they change: SQLite rewrites the index
    // entries of every indexed column named in SET, changed or not.
    let keys_changed =
        next.user_name != current.attrs.user_name || next.external_id != current.attrs.external_id;
    let n = if keys_changed {
        on_backend!(conn, |c| diesel::update(target).set(&row).execute(c))
    } else {
        let unindexed = UnindexedColumns::from(&row);
        on_backend!(conn, |c| diesel::update(target).set(&unindexed).execute(c))
    }
    .map_err(|e| unique_violation(e, "userName", &next.user_name))?;
    if n == 0 {
        // Someone else wrote between our read and our write (PostgreSQL): start over.
        return Err(TxError::Retry);
    }
    if next.emails != current.attrs.emails {
        diesel::delete(
            user_emails::table
                .filter(user_emails::tenant_id.eq(tenant_id))
                .filter(user_emails::user_id.eq(upd.id)),
        )
        .execute(conn)?;
        insert_email_keys(conn, tenant_id, upd.id, &next.email_keys())?;
    }
    let groups = groups_of_one(conn, tenant_id, upd.id)?;
    Ok(row.into_domain(groups)?)
}

/// Deletes a user, its e-mail keys and its memberships (keeping member counts right).
///
/// Lock order (PostgreSQL), shared with every membership change, which locks its group and
/// then the users it adds (`FOR KEY SHARE`): first the user's groups, in id order, then the
/// user (`FOR UPDATE`, which waits for the adders that hold a key-share lock on it and makes
/// later ones find no such user). A membership added between the first read and the user's
/// lock is in a group not locked: the transaction then starts over, to take the locks in
/// order. Each group loses one member for each membership row this transaction itself deleted.
pub fn delete(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    expected_version: Option<i64>,
) -> Result<(), TxError> {
    if !storable_id(id) {
        return Err(DomainError::not_found("user", id).into());
    }
    let mut group_ids = member_of(conn, tenant_id, id)?;
    group_ids.sort_unstable();
    super::groups::lock_rows(conn, tenant_id, &group_ids)?;
    let version: Option<i64> = match conn {
        DbConnection::Postgres(c) => users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq(id))
            .select(users::version)
            .for_update()
            .load(c)
            .map(first)?,
        DbConnection::Sqlite(_) => users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq(id))
            .select(users::version)
            .load(conn)
            .map(first)?,
    };
    let Some(version) = version else {
        return Err(DomainError::not_found("user", id).into());
    };
    if let Some(expected) = expected_version
        && expected != version
    {
        return Err(DomainError::PreconditionFailed {
            expected: expected.to_string(),
        }
        .into());
    }
    // No membership of this user can appear any more; one that appeared since the first read
    // is in a group not locked.
    if member_of(conn, tenant_id, id)?
        .iter()
        .any(|g| group_ids.binary_search(g).is_err())
    {
        return Err(TxError::Retry);
    }
    let memberships = group_members::table
        .filter(group_members::tenant_id.eq(tenant_id))
        .filter(group_members::user_id.eq(id));
    let removed: Vec<String> = on_backend!(conn, |c| diesel::delete(memberships)
        .returning(group_members::group_id)
        .get_results(c))?;
    let at = now();
    for chunk in removed.chunks(CHUNK) {
        diesel::update(
            groups::table
                .filter(groups::tenant_id.eq(tenant_id))
                .filter(groups::id.eq_any(chunk)),
        )
        .set((
            groups::member_count.eq(groups::member_count - 1),
            groups::version.eq(groups::version + 1),
            groups::updated_at.eq(at),
        ))
        .execute(conn)?;
    }
    diesel::delete(
        user_emails::table
            .filter(user_emails::tenant_id.eq(tenant_id))
            .filter(user_emails::user_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(
        users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

/// The ids of the groups `user_id` is a member of.
fn member_of(conn: &mut DbConnection, tenant_id: &str, user_id: &str) -> QueryResult<Vec<String>> {
    group_members::table
        .filter(group_members::tenant_id.eq(tenant_id))
        .filter(group_members::user_id.eq(user_id))
        .select(group_members::group_id)
        .load(conn)
}

/// What [`finish_name_keys`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rekeyed {
    /// Users, groups and users' e-mail lists whose lookup keys were recomputed.
    pub user_names: usize,
    pub group_names: usize,
    pub emails: usize,
    /// Users whose stored JSON held a NUL character (replaced with U+FFFD).
    pub repaired: usize,
    /// Rows whose new key another row of the tenant already has: they keep their old key.
    pub clashes: usize,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The last step of migrating to the name keys of [`name_key`] (migration `name_keys`): while
/// its `rekey_pending` table exists, recomputes the stored keys of every userName, group
/// displayName and e-mail address, replaces NUL characters that a stored JSON document holds
/// (PostgreSQL's JSON functions refuse them, for the whole tenant) with U+FFFD, then drops the
/// table. One transaction; a key another row of the tenant already has is left as it was (and
/// logged), so that nothing is lost.
pub fn finish_name_keys(conn: &mut DbConnection) -> QueryResult<Option<Rekeyed>> {
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "SELECT count(*) AS n FROM pg_catalog.pg_tables \
             WHERE tablename = 'rekey_pending' AND schemaname = current_schema()"
        }
        DbConnection::Sqlite(_) => {
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'rekey_pending'"
        }
    };
    let pending: Vec<Count> = on_backend!(conn, |c| diesel::sql_query(sql).load(c))?;
    if pending.first().is_none_or(|c| c.n <= 0) {
        return Ok(None);
    }
    conn.transaction(|c| {
        let mut done = Rekeyed::default();
        rekey_users(c, &mut done)?;
        super::groups::rekey(c, &mut done)?;
        on_backend!(c, |c| diesel::sql_query("DROP TABLE rekey_pending")
            .execute(c))?;
        Ok(Some(done))
    })
}

/// (tenant id, id, userName, its key, emails, attributes)
type RekeyRow = (String, String, String, String, String, String);

fn rekey_users(conn: &mut DbConnection, done: &mut Rekeyed) -> QueryResult<()> {
    let mut after: Option<(String, String)> = None;
    loop {
        let mut query = users::table
            .select((
                users::tenant_id,
                users::id,
                users::user_name,
                users::user_name_lower,
                users::emails,
                users::attributes,
            ))
            .order((users::tenant_id, users::id))
            .limit(1000)
            .into_boxed();
        if let Some((t, i)) = after.take() {
            query = query.filter(
                users::tenant_id
                    .gt(t.clone())
                    .or(users::tenant_id.eq(t).and(users::id.gt(i))),
            );
        }
        let rows: Vec<RekeyRow> = query.load(conn)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = Some((last.0.clone(), last.1.clone()));
        for (tenant_id, id, user_name, key, emails, attributes) in rows {
            let target = users::table
                .filter(users::tenant_id.eq(&tenant_id))
                .filter(users::id.eq(&id));
            let new_key = name_key(&user_name);
            if new_key != key {
                // In a savepoint: a clash must not abort the whole transaction.
                match conn.transaction(|c| {
                    diesel::update(target)
                        .set(users::user_name_lower.eq(&new_key))
                        .execute(c)
                }) {
                    Ok(_) => done.user_names += 1,
                    Err(e) if super::is_unique_violation(&e) => {
                        done.clashes += 1;
                        tracing::warn!(
                            tenant_id,
                            user_id = id,
                            "another user of the tenant has the same userName once trimmed and \
                             normalised: this one keeps its old lookup key"
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
            let fixed_emails = without_nul(&emails);
            let fixed_attributes = without_nul(&attributes);
            if fixed_emails.is_some() || fixed_attributes.is_some() {
                diesel::update(target)
                    .set((
                        users::emails.eq(fixed_emails.as_deref().unwrap_or(&emails)),
                        users::attributes.eq(fixed_attributes.as_deref().unwrap_or(&attributes)),
                    ))
                    .execute(conn)?;
                done.repaired += 1;
            }
            let list: Vec<Email> = serde_json::from_str(fixed_emails.as_deref().unwrap_or(&emails))
                .unwrap_or_default();
            if list
                .iter()
                .any(|e| name_key(&e.value) != e.value.to_lowercase())
            {
                let input = UserInput {
                    emails: list,
                    ..UserInput::default()
                };
                diesel::delete(
                    user_emails::table
                        .filter(user_emails::tenant_id.eq(&tenant_id))
                        .filter(user_emails::user_id.eq(&id)),
                )
                .execute(conn)?;
                insert_email_keys(conn, &tenant_id, &id, &input.email_keys())?;
                done.emails += 1;
            }
        }
    }
}

/// `json` with every NUL character in its strings and keys replaced by U+FFFD, or `None` when
/// it holds none (or is not JSON).
fn without_nul(json: &str) -> Option<String> {
    fn fix(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = s.replace('\0', "\u{fffd}"),
            serde_json::Value::Array(items) => items.iter_mut().for_each(fix),
            serde_json::Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    fix(&mut v);
                    map.insert(k.replace('\0', "\u{fffd}"), v);
                }
            }
            _ => {}
        }
    }
    if !json.contains("\\u0000") {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_str(json).ok()?;
    fix(&mut value);
    let fixed = value.to_string();
    (fixed != json).then_some(fixed)
}
