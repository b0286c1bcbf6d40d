//! Groups and their members. A membership is one `group_members` row, and a group keeps its
//! member count, so that no change ever reads or rewrites the whole member list: the work of
//! a change is proportional to the members it names.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use time::PrimitiveDateTime;

use diesel::sql_types::Bool;

use super::MultiBackend;
use super::filter;
use super::on_backend;
use super::paging::keyset;
use super::schema::{group_members, groups, users};
use super::users::{foreign_position, storable_id};
use super::{CHUNK, DbConnection, TxError, first, new_id, now, unique_violation, utc};
use crate::domain::{
    DomainError, Group, GroupChanges, Member, MemberOp, Page, PageRequest, Position, ScimType,
    SortAttr, SortValue, check_text, limits::Resource, name_key, validate_display_name,
    validate_group_external_id,
};

pub use roster_proto::limits::MAX_MEMBERS_PER_REQUEST;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = groups)]
struct GroupRow {
    tenant_id: String,
    id: String,
    display_name: String,
    display_name_lower: String,
    external_id: Option<String>,
    member_count: i64,
    version: i64,
    created_at: PrimitiveDateTime,
    updated_at: PrimitiveDateTime,
}

impl GroupRow {
    fn into_domain(self, members: Option<Vec<Member>>) -> Group {
        Group {
            id: self.id,
            display_name: self.display_name,
            external_id: self.external_id,
            members,
            member_count: self.member_count,
            version: self.version,
            created: utc(self.created_at),
            updated: utc(self.updated_at),
        }
    }
}

fn load_row(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<GroupRow>> {
    if !storable_id(id) {
        return Ok(None);
    }
    on_backend!(conn, |c| groups::table
        .filter(groups::tenant_id.eq(tenant_id))
        .filter(groups::id.eq(id))
        .select(GroupRow::as_select())
        .load(c))
    .map(first)
}

/// The group's row for a write: on PostgreSQL it stays locked (`FOR NO KEY UPDATE`, which
/// foreign-key checks do not wait for) until the transaction ends, so
/// that concurrent writers of one group queue instead of failing their version check and
/// retrying (SQLite has one writer).
fn lock_row(conn: &mut DbConnection, tenant_id: &str, id: &str) -> QueryResult<Option<GroupRow>> {
    match conn {
        DbConnection::Postgres(c) if storable_id(id) => groups::table
            .filter(groups::tenant_id.eq(tenant_id))
            .filter(groups::id.eq(id))
            .select(GroupRow::as_select())
            .for_no_key_update()
            .load(c)
            .map(first),
        _ => load_row(conn, tenant_id, id),
    }
}

/// Locks the rows of the groups `sorted_ids` (in that order, which must be id order) on
/// PostgreSQL, as [`lock_row`] does one: the first step of the lock order that deleting a user
/// follows (see `users::delete`). SQLite has one writer.
pub(crate) fn lock_rows(
    conn: &mut DbConnection,
    tenant_id: &str,
    sorted_ids: &[String],
) -> QueryResult<()> {
    let DbConnection::Postgres(c) = conn else {
        return Ok(());
    };
    for chunk in sorted_ids.chunks(CHUNK) {
        groups::table
            .filter(groups::tenant_id.eq(tenant_id))
            .filter(groups::id.eq_any(chunk))
            .select(groups::id)
            .order(groups::id)
            .for_no_key_update()
            .load::<String>(c)?;
    }
    Ok(())
}

/// The members of each of `group_ids`, with each user's display name (or user name).
fn members_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_ids: &[&str],
) -> QueryResult<HashMap<String, Vec<Member>>> {
    let mut out: HashMap<String, Vec<Member>> = HashMap::new();
    for chunk in group_ids.chunks(CHUNK) {
        let rows: Vec<(String, String, Option<String>, String)> = group_members::table
            .inner_join(
                users::table.on(users::tenant_id
                    .eq(group_members::tenant_id)
                    .and(users::id.eq(group_members::user_id))),
            )
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::group_id.eq_any(chunk))
            .select((
                group_members::group_id,
                group_members::user_id,
                users::display_name,
                users::user_name,
            ))
            .order((group_members::group_id, group_members::user_id))
            .load(conn)?;
        for (group_id, user_id, display_name, user_name) in rows {
            out.entry(group_id).or_default().push(Member {
                user_id,
                display: display_name.unwrap_or(user_name),
            });
        }
    }
    Ok(out)
}

pub fn get(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    with_members: bool,
) -> Result<Group, DomainError> {
    let row = load_row(conn, tenant_id, id)?.ok_or_else(|| DomainError::not_found("group", id))?;
    let members = if with_members {
        Some(
            members_of(conn, tenant_id, &[id])?
                .remove(id)
                .unwrap_or_default(),
        )
    } else {
        None
    };
    Ok(row.into_domain(members))
}

/// Where `row` stands in a list sorted by `attr`.
fn position(row: &GroupRow, attr: SortAttr) -> Position {
    let key = match attr {
        SortAttr::DisplayName => SortValue::Text(row.display_name_lower.clone()),
        SortAttr::ExternalId => row
            .external_id
            .clone()
            .map_or(SortValue::Null, SortValue::Text),
        SortAttr::Created => SortValue::Time(row.created_at),
        SortAttr::Modified => SortValue::Time(row.updated_at),
        _ => SortValue::Null,
    };
    Position {
        key,
        id: row.id.clone(),
    }
}

type SortBound =
    Box<dyn diesel::expression::BoxableExpression<groups::table, MultiBackend, SqlType = Bool>>;

/// Groups strictly after (`after`) or before `at` in the ascending order of `attr`.
fn bound(attr: SortAttr, at: &Position, after: bool) -> Result<SortBound, DomainError> {
    let id = at.id.clone();
    let text = || match &at.key {
        SortValue::Text(s) => Ok(s.clone()),
        _ => Err(foreign_position()),
    };
    let opt_text = || match &at.key {
        SortValue::Null => Ok(None),
        SortValue::Text(s) => Ok(Some(s.clone())),
        _ => Err(foreign_position()),
    };
    let instant = || match at.key {
        SortValue::Time(t) => Ok(t),
        _ => Err(foreign_position()),
    };
    Ok(match attr {
        SortAttr::DisplayName => {
            keyset::bound!(groups::display_name_lower, groups::id, text()?, id, after)
        }
        SortAttr::ExternalId => {
            keyset::nullable_bound!(groups::external_id, groups::id, opt_text()?, id, after)
        }
        SortAttr::Created => keyset::bound!(groups::created_at, groups::id, instant()?, id, after),
        SortAttr::Modified => keyset::bound!(groups::updated_at, groups::id, instant()?, id, after),
        _ if after => Box::new(groups::id.gt(id)),
        _ => Box::new(groups::id.lt(id)),
    })
}

/// Lists groups, filtered by a SCIM filter, in the order of `page.sort` (creation order by
/// default), from a keyset position, an offset or the start.
pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    filter: Option<&filter::Filter>,
    page: &PageRequest,
    with_members: bool,
    known_total: Option<i64>,
) -> Result<Page<Group>, DomainError> {
    if page.cursor.is_none()
        && let Some(name) =
            filter.and_then(|f| filter::unique_eq(f, filter::Resource::Group, "displayName"))
    {
        let rows: Vec<GroupRow> = groups::table
            .filter(groups::tenant_id.eq(tenant_id))
            .filter(groups::display_name_lower.eq(name_key(name)))
            .select(GroupRow::as_select())
            .load(conn)?;
        let total = rows.len() as i64;
        if page.total_only {
            return Ok(Page::total_only(total));
        }
        let rows = rows
            .into_iter()
            .skip(usize::try_from(page.skip).unwrap_or(0))
            .collect();
        return Ok(Page {
            items: with_members_of(conn, tenant_id, rows, with_members)?,
            next: None,
            previous: None,
            end: None,
            total,
        });
    }
    let attr = page.sort.attr;
    let mut query = groups::table
        .filter(groups::tenant_id.eq(tenant_id.to_owned()))
        .select(GroupRow::as_select())
        .into_boxed();
    // Compiled once, for the rows and for the count.
    let cond = filter
        .map(|f| filter::groups(f, tenant_id, filter::backend(conn)))
        .transpose()?;
    if let Some(c) = &cond {
        query = query.filter(c.clone());
    }
    // A continued page reuses the total counted for the page before it.
    let total: i64 = match known_total {
        Some(total) => total,
        None => {
            let mut count = groups::table
                .filter(groups::tenant_id.eq(tenant_id.to_owned()))
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
        SortAttr::DisplayName => {
            keyset::order!(query, groups::display_name_lower, groups::id, ascending)
        }
        SortAttr::ExternalId => {
            keyset::order!(query, groups::external_id, groups::id, ascending, nullable)
        }
        SortAttr::Created => keyset::order!(query, groups::created_at, groups::id, ascending),
        SortAttr::Modified => keyset::order!(query, groups::updated_at, groups::id, ascending),
        _ => {
            if ascending {
                query.order(groups::id.asc())
            } else {
                query.order(groups::id.desc())
            }
        }
    };
    let mut rows: Vec<GroupRow> = query.limit(page.size + 1).load(conn)?;
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
            return list(conn, tenant_id, filter, &first, with_members, Some(total));
        }
        rows.reverse();
    }
    let first = rows.first().map(|r| position(r, attr));
    let last = rows.last().map(|r| position(r, attr));
    let (next, previous) = if page.backward {
        (last.clone(), first.filter(|_| more))
    } else {
        (
            last.clone().filter(|_| more),
            first.filter(|_| page.cursor.is_some() || page.skip > 0),
        )
    };
    Ok(Page {
        items: with_members_of(conn, tenant_id, rows, with_members)?,
        next,
        previous,
        end: last,
        total,
    })
}

/// The groups of `rows`, with their members when asked for (one query for the page).
fn with_members_of(
    conn: &mut DbConnection,
    tenant_id: &str,
    rows: Vec<GroupRow>,
    with_members: bool,
) -> Result<Vec<Group>, DomainError> {
    let mut members = if with_members && !rows.is_empty() {
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        Some(members_of(conn, tenant_id, &ids)?)
    } else {
        None
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let m = if with_members {
                Some(
                    members
                        .as_mut()
                        .and_then(|all| all.remove(&r.id))
                        .unwrap_or_default(),
                )
            } else {
                None
            };
            r.into_domain(m)
        })
        .collect())
}

/// Creates a group with its first members.
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    display_name: &str,
    external_id: Option<&str>,
    members: &[String],
) -> Result<String, TxError> {
    validate_display_name(display_name)?;
    validate_group_external_id(external_id)?;
    let at = now();
    let row = GroupRow {
        tenant_id: tenant_id.to_owned(),
        id: new_id(),
        display_name: display_name.to_owned(),
        display_name_lower: name_key(display_name),
        external_id: external_id.map(str::to_owned),
        member_count: 0,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    diesel::insert_into(groups::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| unique_violation(e, "displayName", display_name))?;
    let added = add_members(conn, tenant_id, &row.id, members)?;
    if added > 0 {
        diesel::update(
            groups::table
                .filter(groups::tenant_id.eq(tenant_id))
                .filter(groups::id.eq(&row.id)),
        )
        .set(groups::member_count.eq(added))
        .execute(conn)?;
    }
    Ok(row.id)
}

/// Distinct ids, in first-seen order; refuses an oversized request.
fn distinct(ids: &[String]) -> Result<Vec<&str>, DomainError> {
    if ids.len() > MAX_MEMBERS_PER_REQUEST {
        return Err(DomainError::invalid(
            ScimType::TooMany,
            format!("at most {MAX_MEMBERS_PER_REQUEST} members per request"),
        ));
    }
    for id in ids {
        check_text(Resource::Group, "members.value", id)?;
    }
    let mut seen = HashSet::with_capacity(ids.len());
    Ok(ids
        .iter()
        .map(String::as_str)
        .filter(|id| seen.insert(*id))
        .collect())
}

fn not_a_user(id: &str) -> DomainError {
    DomainError::invalid(
        ScimType::InvalidValue,
        format!("member {id:?} is not a user of this tenant"),
    )
}

/// Adds members; returns how many were not members before. Unknown user ids are refused.
///
/// On PostgreSQL the users added stay key-share locked (`FOR KEY SHARE`, as the foreign key
/// check would lock them) until the transaction ends, so that a concurrent deletion of one of
/// them either waits for this change (and then removes the new membership) or has happened
/// (and the user is unknown here).
fn add_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: &str,
    user_ids: &[String],
) -> Result<i64, TxError> {
    let ids = distinct(user_ids)?;
    let mut added = 0i64;
    for chunk in ids.chunks(CHUNK) {
        let known = users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq_any(chunk))
            .select(users::id);
        let known: HashSet<String> = match conn {
            DbConnection::Postgres(c) => known.for_key_share().load::<String>(c)?,
            DbConnection::Sqlite(c) => known.load::<String>(c)?,
        }
        .into_iter()
        .collect();
        if let Some(missing) = chunk.iter().find(|id| !known.contains(**id)) {
            return Err(not_a_user(missing).into());
        }
        let present: HashSet<String> = group_members::table
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::group_id.eq(group_id))
            .filter(group_members::user_id.eq_any(chunk))
            .select(group_members::user_id)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let rows: Vec<_> = chunk
            .iter()
            .filter(|id| !present.contains(**id))
            .map(|id| {
                (
                    group_members::tenant_id.eq(tenant_id),
                    group_members::group_id.eq(group_id),
                    group_members::user_id.eq(*id),
                )
            })
            .collect();
        for rows in rows.chunks(CHUNK / 3) {
            added += insert_ignoring_present(conn, rows).map_err(|e| match e {
                // A user gone after all is an unknown user, as above (never an internal error).
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                    _,
                ) => TxError::from(DomainError::invalid(
                    ScimType::InvalidValue,
                    "a member is not a user of this tenant (it was just deleted)",
                )),
                other => TxError::from(other),
            })?;
        }
    }
    Ok(added)
}

type MemberRow<'a> = (
    diesel::dsl::Eq<group_members::tenant_id, &'a str>,
    diesel::dsl::Eq<group_members::group_id, &'a str>,
    diesel::dsl::Eq<group_members::user_id, &'a str>,
);

/// Inserts membership rows, skipping any that a concurrent writer inserted first.
fn insert_ignoring_present(conn: &mut DbConnection, rows: &[MemberRow<'_>]) -> QueryResult<i64> {
    let n = match conn {
        DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(group_members::table)
            .values(rows)
            .execute(c)?,
        DbConnection::Postgres(c) => diesel::insert_into(group_members::table)
            .values(rows)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

fn remove_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: &str,
    user_ids: &[String],
) -> Result<i64, TxError> {
    let ids = distinct(user_ids)?;
    let mut removed = 0i64;
    for chunk in ids.chunks(CHUNK) {
        let n = diesel::delete(
            group_members::table
                .filter(group_members::tenant_id.eq(tenant_id))
                .filter(group_members::group_id.eq(group_id))
                .filter(group_members::user_id.eq_any(chunk)),
        )
        .execute(conn)?;
        removed += i64::try_from(n).unwrap_or(i64::MAX);
    }
    Ok(removed)
}

fn remove_all_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: &str,
) -> QueryResult<i64> {
    let n = diesel::delete(
        group_members::table
            .filter(group_members::tenant_id.eq(tenant_id))
            .filter(group_members::group_id.eq(group_id)),
    )
    .execute(conn)?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Updates a group's attributes and membership in one go.
pub fn update(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    changes: &GroupChanges,
    ops: &[MemberOp],
    expected_version: Option<i64>,
) -> Result<(), TxError> {
    let row = lock_row(conn, tenant_id, id)?.ok_or_else(|| DomainError::not_found("group", id))?;
    if let Some(expected) = expected_version
        && expected != row.version
    {
        return Err(DomainError::PreconditionFailed {
            expected: expected.to_string(),
        }
        .into());
    }
    let mut display_name = row.display_name.clone();
    let mut external_id = row.external_id.clone();
    if let Some(name) = &changes.display_name {
        validate_display_name(name)?;
        display_name.clone_from(name);
    }
    if let Some(ext) = &changes.external_id {
        validate_group_external_id(ext.as_deref())?;
        external_id.clone_from(ext);
    }
    let mut delta = 0i64;
    let mut touched = false;
    for op in ops {
        match op {
            MemberOp::Add(ids) => {
                let n = add_members(conn, tenant_id, id, ids)?;
                delta += n;
                touched |= n > 0;
            }
            MemberOp::Remove(ids) => {
                let n = remove_members(conn, tenant_id, id, ids)?;
                delta -= n;
                touched |= n > 0;
            }
            MemberOp::RemoveAll => {
                let n = remove_all_members(conn, tenant_id, id)?;
                delta -= n;
                touched |= n > 0;
            }
            MemberOp::Replace(ids) => {
                let removed = remove_all_members(conn, tenant_id, id)?;
                let added = add_members(conn, tenant_id, id, ids)?;
                delta += added - removed;
                touched |= removed > 0 || added > 0;
            }
        }
    }
    let renamed = display_name != row.display_name || external_id != row.external_id;
    if !renamed && !touched {
        return Ok(());
    }
    let n = diesel::update(
        groups::table
            .filter(groups::tenant_id.eq(tenant_id))
            .filter(groups::id.eq(id))
            .filter(groups::version.eq(row.version)),
    )
    .set((
        groups::display_name_lower.eq(name_key(&display_name)),
        groups::display_name.eq(&display_name),
        groups::external_id.eq(&external_id),
        groups::member_count.eq(groups::member_count + delta),
        groups::version.eq(row.version + 1),
        groups::updated_at.eq(now()),
    ))
    .execute(conn)
    .map_err(|e| unique_violation(e, "displayName", &display_name))?;
    if n == 0 {
        return Err(TxError::Retry);
    }
    Ok(())
}

pub fn delete(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
    expected_version: Option<i64>,
) -> Result<(), TxError> {
    let row = lock_row(conn, tenant_id, id)?.ok_or_else(|| DomainError::not_found("group", id))?;
    if let Some(expected) = expected_version
        && expected != row.version
    {
        return Err(DomainError::PreconditionFailed {
            expected: expected.to_string(),
        }
        .into());
    }
    remove_all_members(conn, tenant_id, id)?;
    diesel::delete(
        groups::table
            .filter(groups::tenant_id.eq(tenant_id))
            .filter(groups::id.eq(id)),
    )
    .execute(conn)?;
    Ok(())
}

/// A page of one group's members, in user-id order (keyset paging).
pub fn list_members(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: &str,
    size: i64,
    after: Option<&str>,
) -> Result<(Vec<Member>, Option<String>), DomainError> {
    if load_row(conn, tenant_id, group_id)?.is_none() {
        return Err(DomainError::not_found("group", group_id));
    }
    let mut query = group_members::table
        .inner_join(
            users::table.on(users::tenant_id
                .eq(group_members::tenant_id)
                .and(users::id.eq(group_members::user_id))),
        )
        .filter(group_members::tenant_id.eq(tenant_id.to_owned()))
        .filter(group_members::group_id.eq(group_id.to_owned()))
        .select((
            group_members::user_id,
            users::display_name,
            users::user_name,
        ))
        .order(group_members::user_id.asc())
        .limit(size + 1)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(group_members::user_id.gt(after.to_owned()));
    }
    let mut rows: Vec<(String, Option<String>, String)> = query.load(conn)?;
    let more = rows.len() as i64 > size;
    rows.truncate(usize::try_from(size).unwrap_or(0));
    let next = if more {
        rows.last().map(|r| r.0.clone())
    } else {
        None
    };
    Ok((
        rows.into_iter()
            .map(|(user_id, display, user_name)| Member {
                user_id,
                display: display.unwrap_or(user_name),
            })
            .collect(),
        next,
    ))
}

/// Recomputes the stored displayName keys (see `users::finish_name_keys`).
pub(crate) fn rekey(conn: &mut DbConnection, done: &mut super::users::Rekeyed) -> QueryResult<()> {
    let mut after: Option<(String, String)> = None;
    loop {
        let mut query = groups::table
            .select((
                groups::tenant_id,
                groups::id,
                groups::display_name,
                groups::display_name_lower,
            ))
            .order((groups::tenant_id, groups::id))
            .limit(1000)
            .into_boxed();
        if let Some((t, i)) = after.take() {
            query = query.filter(
                groups::tenant_id
                    .gt(t.clone())
                    .or(groups::tenant_id.eq(t).and(groups::id.gt(i))),
            );
        }
        let rows: Vec<(String, String, String, String)> = query.load(conn)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = Some((last.0.clone(), last.1.clone()));
        for (tenant_id, id, display_name, key) in rows {
            let new_key = name_key(&display_name);
            if new_key == key {
                continue;
            }
            let target = groups::table
                .filter(groups::tenant_id.eq(&tenant_id))
                .filter(groups::id.eq(&id));
            match conn.transaction(|c| {
                diesel::update(target)
                    .set(groups::display_name_lower.eq(&new_key))
                    .execute(c)
            }) {
                Ok(_) => done.group_names += 1,
                Err(e) if super::is_unique_violation(&e) => {
                    done.clashes += 1;
                    tracing::warn!(
                        tenant_id,
                        group_id = id,
                        "another group of the tenant has the same displayName once trimmed and \
                         normalised: this one keeps its old lookup key"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }
}
