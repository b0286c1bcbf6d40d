-- Issue 4: the tenant's own roles, service tokens, tokens owned by a user, Basic credentials and
-- last-use times.

-- Roles a tenant adds to the four built-in ones (admin, developer, templates, reporting).
CREATE TABLE roles (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    -- Space-separated permission names (`*` grants everything).
    permissions TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Service tokens: reads only.
ALTER TABLE tokens ADD COLUMN read_only BOOLEAN NOT NULL DEFAULT FALSE;
-- Admin tokens: the user they act for (admin only while that user's effective role is admin).
ALTER TABLE tokens ADD COLUMN user_id TEXT;
-- HTTP Basic credentials: the user name; `secret_hash` then holds an Argon2id hash.
ALTER TABLE tokens ADD COLUMN basic_username TEXT;
-- To the minute.
ALTER TABLE tokens ADD COLUMN last_used_at TIMESTAMP;
CREATE UNIQUE INDEX tokens_basic_username ON tokens (basic_username);
