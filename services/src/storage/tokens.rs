//! Bearer tokens: a 256-bit random secret, of which only the SHA-256 is stored.

use base64::Engine;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
    created_at: time::PrimitiveDateTime,
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

/// Mints a token for `tenant_id`; returns it with its secret (shown once, never stored).
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    tenant_name: &str,
    kind: TokenKind,
    description: &str,
) -> Result<(Token, String), TxError> {
    let secret = new_secret()?;
    let row = TokenRow {
        tenant_id: tenant_id.to_owned(),
        id: new_id(),
        kind: kind.as_str().to_owned(),
        prefix: secret[..PREFIX_LEN].to_owned(),
        secret_hash: hash_secret(&secret),
        description: description.to_owned(),
        created_at: now(),
        revoked_at: None,
    };
    diesel::insert_into(tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok((to_domain(row, tenant_name), secret))
}

fn to_domain(row: TokenRow, tenant_name: &str) -> Token {
    Token {
        id: row.id,
        tenant_name: tenant_name.to_owned(),
        kind: TokenKind::parse(&row.kind).unwrap_or(TokenKind::Scim),
        prefix: row.prefix,
        description: row.description,
        created: utc(row.created_at),
        revoked: row.revoked_at.is_some(),
    }
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
        .filter(tokens::revoked_at.is_null())
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

/// Revokes a token of `tenant_id`; NOT_FOUND if it has no such live token.
pub fn revoke(conn: &mut DbConnection, tenant_id: &str, id: &str) -> Result<(), TxError> {
    let n = diesel::update(
        tokens::table
            .filter(tokens::tenant_id.eq(tenant_id))
            .filter(tokens::id.eq(id))
            .filter(tokens::revoked_at.is_null()),
    )
    .set(tokens::revoked_at.eq(Some(now())))
    .execute(conn)?;
    if n == 0 {
        return Err(DomainError::not_found("token", id).into());
    }
    Ok(())
}
