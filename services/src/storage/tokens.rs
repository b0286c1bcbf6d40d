//! Bearer tokens: a 256-bit random secret, of which only the SHA-256 is stored.

use base64::Engine;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::PrimitiveDateTime;

use super::on_backend;
use super::schema::{tenants, tokens};
use super::tenants::TenantRow;
use super::{DbConnection, TxError, first, new_id, now, utc};
use crate::domain::{DomainError, PasswordPolicy, Principal, Token, TokenKind};

/// Every secret starts with this, so that secret scanners can recognise a leaked one.
pub const SECRET_PREFIX: &str = "rst_";
/// How many characters of the secret are kept (and shown) to tell tokens apart.
const PREFIX_LEN: usize = SECRET_PREFIX.len() + 6;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = tokens)]
struct TokenRow {
    tenant_id: String,
    id: String,
    kind: String,
    prefix: String,
    secret_hash: String,
    description: String,
    created_by: String,
    created_at: time::PrimitiveDateTime,
    expires_at: Option<time::PrimitiveDateTime>,
    revoked_at: Option<time::PrimitiveDateTime>,
}

/// The stored form of a secret: the hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn new_secret() -> Result<String, DomainError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DomainError::internal(e.to_string()))?;
    Ok(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// What a new token is for.
pub struct NewToken<'a> {
    pub kind: TokenKind,
    pub description: &'a str,
    /// The token that creates it (empty: the CLI or the bootstrap).
    pub created_by: &'a str,
    pub expires_at: Option<PrimitiveDateTime>,
}

/// Mints a token for `tenant_id`; returns it with its secret (shown once, never stored).
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    tenant_name: &str,
    new: &NewToken<'_>,
) -> Result<(Token, String), TxError> {
    let secret = new_secret()?;
    let row = TokenRow {
        tenant_id: tenant_id.to_owned(),
        id: new_id(),
        kind: new.kind.as_str().to_owned(),
        prefix: secret[..PREFIX_LEN].to_owned(),
        secret_hash: hash_secret(&secret),
        description: new.description.to_owned(),
        created_by: new.created_by.to_owned(),
        created_at: now(),
        expires_at: new.expires_at,
        revoked_at: None,
    };
    diesel::insert_into(tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok((to_domain(row, tenant_name), secret))
}

fn to_domain(row: TokenRow, tenant_name: &str) -> Token {
    let revoked = row.expires_at.is_some_and(|at| at <= now());
    Token {
        id: row.id,
        tenant_name: tenant_name.to_owned(),
        kind: TokenKind::parse(&row.kind).unwrap_or(TokenKind::Scim),
        prefix: row.prefix,
        description: row.description,
        created: utc(row.created_at),
        created_by: row.created_by,
        expires: row.expires_at.map(utc),
        revoked_at: row.revoked_at.map(utc),
        revoked,
    }
}

/// A live token of `tenant_id` (one that still works), or NOT_FOUND.
fn live(conn: &mut DbConnection, tenant_id: &str, id: &str) -> Result<TokenRow, TxError> {
    let at = now();
    tokens::table
        .filter(tokens::tenant_id.eq(tenant_id))
        .filter(tokens::id.eq(id))
        .filter(tokens::expires_at.is_null().or(tokens::expires_at.gt(at)))
        .select(TokenRow::as_select())
        .load(conn)
        .map(first)?
        .ok_or_else(|| DomainError::not_found("token", id).into())
}

/// Replaces a token's secret: a new token for the same purpose, while the old secret works
/// for `grace_seconds` more (0: stops at once).
pub fn regenerate(
    conn: &mut DbConnection,
    tenant_id: &str,
    tenant_name: &str,
    id: &str,
    grace_seconds: i64,
    created_by: &str,
) -> Result<(Token, String), TxError> {
    let old = live(conn, tenant_id, id)?;
    let at = now();
    let stops = at + time::Duration::seconds(grace_seconds);
    let stops = old.expires_at.map_or(stops, |e| e.min(stops));
    diesel::update(
        tokens::table
            .filter(tokens::tenant_id.eq(tenant_id))
            .filter(tokens::id.eq(id)),
    )
    .set((
        tokens::revoked_at.eq(Some(at)),
        tokens::expires_at.eq(Some(stops)),
    ))
    .execute(conn)?;
    let kind = TokenKind::parse(&old.kind).unwrap_or(TokenKind::Scim);
    create(
        conn,
        tenant_id,
        tenant_name,
        &NewToken {
            kind,
            description: &old.description,
            created_by,
            expires_at: old.expires_at,
        },
    )
}

/// Finds the live token whose secret is `secret`. The lookup goes through the hash's unique
/// index; the stored hash is then compared in constant time.
pub fn authenticate(conn: &mut DbConnection, secret: &str) -> Result<Principal, DomainError> {
    if !secret.starts_with(SECRET_PREFIX) || secret.len() > 256 {
        return Err(DomainError::Unauthenticated);
    }
    let hash = hash_secret(secret);
    let found: Option<(TokenRow, TenantRow)> = on_backend!(conn, |c| tokens::table
        .inner_join(tenants::table.on(tenants::id.eq(tokens::tenant_id)))
        .filter(tokens::secret_hash.eq(&hash))
        .filter(
            tokens::expires_at
                .is_null()
                .or(tokens::expires_at.gt(now()))
        )
        .select((TokenRow::as_select(), TenantRow::as_select()))
        .load(c))
    .map(first)?;
    let Some((token, tenant)) = found else {
        return Err(DomainError::Unauthenticated);
    };
    if !bool::from(token.secret_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Err(DomainError::Unauthenticated);
    }
    Ok(Principal {
        tenant_id: tenant.id,
        tenant_name: tenant.name,
        password_policy: PasswordPolicy::parse(&tenant.password_policy).unwrap_or_default(),
        token_id: token.id,
        kind: TokenKind::parse(&token.kind).ok_or(DomainError::Unauthenticated)?,
        scim_enabled: tenant.scim_enabled,
        expires: token.expires_at.map(utc),
    })
}

pub fn list(
    conn: &mut DbConnection,
    tenant_id: &str,
    tenant_name: &str,
) -> Result<Vec<Token>, DomainError> {
    let rows: Vec<TokenRow> = tokens::table
        .filter(tokens::tenant_id.eq(tenant_id))
        .select(TokenRow::as_select())
        .order(tokens::id.asc())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| to_domain(r, tenant_name))
        .collect())
}

/// Revokes a token of `tenant_id` at once; NOT_FOUND if it has no such live token.
pub fn revoke(conn: &mut DbConnection, tenant_id: &str, id: &str) -> Result<(), TxError> {
    live(conn, tenant_id, id)?;
    let at = now();
    diesel::update(
        tokens::table
            .filter(tokens::tenant_id.eq(tenant_id))
            .filter(tokens::id.eq(id)),
    )
    .set((
        tokens::revoked_at.eq(Some(at)),
        tokens::expires_at.eq(Some(at)),
    ))
    .execute(conn)?;
    Ok(())
}
