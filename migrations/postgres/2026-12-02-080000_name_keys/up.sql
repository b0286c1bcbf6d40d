-- Issue 8: the lookup keys of userName, a group's displayName and e-mail addresses become
-- trimmed, Unicode-normalised (NFC) and lower-cased (`domain::name_key`), so that names that
-- differ only by surrounding white space or by normalisation are one name. SQLite cannot
-- compute NFC in SQL: while this table exists, `roster migrate` recomputes the stored keys in
-- Rust (the same function the service uses), then drops it.
CREATE TABLE rekey_pending (pending BOOLEAN NOT NULL);
