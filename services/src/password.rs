//! SCIM `password` values, kept (when the tenant's policy says so) only as Argon2id hashes.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::domain::{DomainError, ScimType};

/// Longest password accepted, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The PHC string of an Argon2id hash of `password` (about 100 ms of work: call it on the
/// blocking pool, bounded).
pub fn hash(password: &str) -> Result<String, DomainError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            format!("password is longer than {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| DomainError::internal(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| DomainError::internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| DomainError::internal(e.to_string()))
}

/// Whether `password` matches a stored PHC hash (in constant time).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_never_contain_the_password() {
        let h = hash("correct horse").unwrap_or_default();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
    }
}
