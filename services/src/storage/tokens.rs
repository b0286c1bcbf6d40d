//! Bearer tokens: a 256-bit random secret, of which only the SHA-256 is stored.

use base64::Engine;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::PrimitiveDateTime;

use super::on_backend;
use super::schema::{tenants, tokens};
use super::tenants::TenantRow;
use super::{DbConnection, TxError, first, new_id, now, users, utc};
use crate::domain::{DomainError, PasswordPolicy, Principal, ScimType, Token, TokenKind};
use crate::password;

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
    created_at: PrimitiveDateTime,
    expires_at: Option<PrimitiveDateTime>,
    revoked_at: Option<PrimitiveDateTime>,
    read_only: bool,
    user_id: Option<String>,
    basic_username: Option<String>,
    last_used_at: Option<PrimitiveDateTime>,
}

/// The stored form of a bearer secret: the hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], DomainError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| DomainError::internal(e.to_string()))?;
    Ok(bytes)
}

/// A freshly minted secret and what is stored of it.
pub struct Minted {
    /// Shown once, never stored.
    pub secret: String,
    /// SHA-256 (bearer) or an Argon2id PHC string (Basic).
    pub stored_hash: String,
    /// HTTP Basic credentials: the user name.
    pub basic_username: Option<String>,
}

impl Minted {
    /// A bearer secret: `rst_` and 256 random bits.
    pub fn bearer() -> Result<Minted, DomainError> {
        let secret = format!(
            "{SECRET_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        Ok(Minted {
            stored_hash: hash_secret(&secret),
            secret,
            basic_username: None,
        })
    }

    /// HTTP Basic credentials: a random user name, and a bearer-like secret as password kept
    /// as an Argon2id hash. Slow (the hash): call it off the async runtime.
    pub fn basic() -> Result<Minted, DomainError> {
        let bearer = Minted::bearer()?;
        Ok(Minted {
            stored_hash: password::hash(&bearer.secret)?,
            secret: bearer.secret,
            basic_username: Some(format!("roster-{}", hex::encode(random_bytes::<8>()?))),
        })
    }
}

/// What a new token is for.
pub struct NewToken<'a> {
    pub kind: TokenKind,
    pub description: &'a str,
    /// The token that creates it (empty: the CLI or the bootstrap).
    pub created_by: &'a str,
    pub expires_at: Option<PrimitiveDateTime>,
    /// Service tokens: reads only.
    pub read_only: bool,
    /// Admin tokens: the user they act for.
    pub user_id: Option<&'a str>,
}

impl NewToken<'_> {
    /// A token of `kind` with no options.
    pub fn plain<'a>(kind: TokenKind, description: &'a str) -> NewToken<'a> {
        NewToken {
            kind,
            description,
            created_by: "",
            expires_at: None,
            read_only: false,
            user_id: None,
        }
    }

    /// The options that only some kinds take.
    fn validate(&self, minted: &Minted) -> Result<(), DomainError> {
        let bad = |detail: &str| Err(DomainError::invalid(ScimType::InvalidValue, detail));
        if self.read_only && self.kind != TokenKind::Service {
            return bad("read_only applies to service tokens only");
        }
        if minted.basic_username.is_some() && self.kind != TokenKind::Scim {
            return bad("basic_auth applies to SCIM tokens only");
        }
        match (self.kind, self.user_id) {
            (TokenKind::Admin, None) => {
                bad("an admin token needs user_id: the active admin user it acts for")
            }
            (TokenKind::Admin, Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => bad("user_id applies to admin tokens only"),
        }
    }
}

/// Mints a token for `tenant_id` with the `minted` secret; returns it as listed.
pub fn create(
    conn: &mut DbConnection,
    tenant_id: &str,
    tenant_name: &str,
    new: &NewToken<'_>,
    minted: &Minted,
) -> Result<Token, TxError> {
    new.validate(minted)?;
    let row = TokenRow {
        tenant_id: tenant_id.to_owned(),
        id: new_id(),
        kind: new.kind.as_str().to_owned(),
        prefix: minted.secret[..PREFIX_LEN].to_owned(),
        secret_hash: minted.stored_hash.clone(),
        description: new.description.to_owned(),
        created_by: new.created_by.to_owned(),
        created_at: now(),
        expires_at: new.expires_at,
        revoked_at: None,
        read_only: new.read_only,
        user_id: new.user_id.map(str::to_owned),
        basic_username: minted.basic_username.clone(),
        last_used_at: None,
    };
    diesel::insert_into(tokens::table)
        .values(&row)
        .execute(conn)?;
    Ok(to_domain(row, tenant_name))
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
        read_only: row.read_only,
        user_id: row.user_id,
        basic_username: row.basic_username,
        last_used: row.last_used_at.map(utc),
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

/// What the policy and [`regenerate`] need to know of a live token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveToken {
    pub kind: TokenKind,
    /// HTTP Basic credentials: a replacement must be minted the same way.
    pub basic: bool,
}

/// A live token of `tenant_id` (one that still works), or NOT_FOUND.
pub fn find_live(
    conn: &mut DbConnection,
    tenant_id: &str,
    id: &str,
) -> Result<LiveToken, DomainError> {
    let found: Option<(String, Option<String>)> = tokens::table
        .filter(tokens::tenant_id.eq(tenant_id))
        .filter(tokens::id.eq(id))
        .filter(
            tokens::expires_at
                .is_null()
                .or(tokens::expires_at.gt(now())),
        )
        .select((tokens::kind, tokens::basic_username))
        .load(conn)
        .map(first)?;
    let (kind, basic) = found.ok_or_else(|| DomainError::not_found("token", id))?;
    Ok(LiveToken {
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| DomainError::internal(format!("token {id} has no known kind")))?,
        basic: basic.is_some(),
    })
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
    minted: &Minted,
) -> Result<Token, TxError> {
    let old = live(conn, tenant_id, id)?;
    if old.basic_username.is_some() != minted.basic_username.is_some() {
        // The token changed between the caller's look and this transaction: run it again.
        return Err(TxError::Retry);
    }
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
            read_only: old.read_only,
            user_id: old.user_id.as_deref(),
        },
        minted,
    )
}

/// A token found by its credentials, with its tenant.
pub struct Authenticated {
    pub principal: Principal,
    /// When it was last used (to the minute), for [`touch`].
    pub last_used: Option<PrimitiveDateTime>,
}

/// Finds the live token whose bearer secret is `secret`. The lookup goes through the hash's
/// unique index; the stored hash is then compared in constant time.
pub fn authenticate(conn: &mut DbConnection, secret: &str) -> Result<Authenticated, DomainError> {
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
    if token.basic_username.is_some()
        || !bool::from(token.secret_hash.as_bytes().ct_eq(hash.as_bytes()))
    {
        return Err(DomainError::Unauthenticated);
    }
    principal(conn, token, tenant)
}

/// HTTP Basic credentials as stored: the principal they stand for, and the Argon2id hash the
/// password must match (checked by the caller, off the database thread).
pub fn find_basic(
    conn: &mut DbConnection,
    username: &str,
) -> Result<(Authenticated, String), DomainError> {
    let found: Option<(TokenRow, TenantRow)> = tokens::table
        .inner_join(tenants::table.on(tenants::id.eq(tokens::tenant_id)))
        .filter(tokens::basic_username.eq(username))
        .filter(
            tokens::expires_at
                .is_null()
                .or(tokens::expires_at.gt(now())),
        )
        .select((TokenRow::as_select(), TenantRow::as_select()))
        .load(conn)
        .map(first)?;
    let Some((token, tenant)) = found else {
        return Err(DomainError::Unauthenticated);
    };
    let phc = token.secret_hash.clone();
    Ok((principal(conn, token, tenant)?, phc))
}

fn principal(
    conn: &mut DbConnection,
    token: TokenRow,
    tenant: TenantRow,
) -> Result<Authenticated, DomainError> {
    let kind = TokenKind::parse(&token.kind).ok_or(DomainError::Unauthenticated)?;
    // An admin token acts for its user, and grants admin only while that user is an active
    // admin (checked again whenever the token is, so at least every AUTH_CACHE_TTL).
    let admin_granted = match (kind, &token.user_id) {
        (TokenKind::Admin, Some(user_id)) => match users::get(conn, &tenant.id, user_id) {
            Ok(user) => user.acts_as_admin(&tenant.default_role),
            Err(DomainError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        },
        _ => false,
    };
    Ok(Authenticated {
        principal: Principal {
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            password_policy: PasswordPolicy::parse(&tenant.password_policy).unwrap_or_default(),
            default_role: tenant.default_role,
            token_id: token.id,
            kind,
            scim_enabled: tenant.scim_enabled,
            read_only: token.read_only,
            user_id: token.user_id,
            admin_granted,
            expires: token.expires_at.map(utc),
        },
        last_used: token.last_used_at,
    })
}

/// How precisely `last_used_at` is kept: a token is written at most once per this period.
pub const LAST_USE_PRECISION: time::Duration = time::Duration::minutes(1);

/// Whether a token last used at `last_used` should be touched now.
pub fn needs_touch(last_used: Option<PrimitiveDateTime>) -> bool {
    last_used.is_none_or(|at| now() - at >= LAST_USE_PRECISION)
}

/// Records that a token was used now (to the minute).
pub fn touch(conn: &mut DbConnection, tenant_id: &str, id: &str) -> Result<(), TxError> {
    let at = now();
    diesel::update(
        tokens::table
            .filter(tokens::tenant_id.eq(tenant_id))
            .filter(tokens::id.eq(id))
            .filter(
                tokens::last_used_at
                    .is_null()
                    .or(tokens::last_used_at.lt(at - LAST_USE_PRECISION)),
            ),
    )
    .set(tokens::last_used_at.eq(Some(at)))
    .execute(conn)?;
    Ok(())
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
