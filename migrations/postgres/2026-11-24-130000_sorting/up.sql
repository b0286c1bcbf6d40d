-- Sorting (RFC 7644 §3.4.2.3) served from an index where a sort would otherwise read and sort a
-- whole tenant. userName (users_user_name), externalId (users_external_id, groups_external_id)
-- and a group's displayName (groups_display_name) already have one. Each index costs every
-- write that touches its columns, so only these are added:
--   meta.created: written once, at creation, never updated.
--   a user's meta.lastModified: rewritten by each user update that changes something (one
--   entry); it also serves the `meta.lastModified gt "..."` filters of incremental syncs.
-- `id` ends each index: it breaks ties, so that keyset paging continues from the index.
-- A group's meta.lastModified changes with every membership change and groups are few per
-- tenant: it is sorted without an index, as are the users' name parts, displayName and title.
CREATE INDEX users_created ON users (tenant_id, created_at, id);
CREATE INDEX users_modified ON users (tenant_id, updated_at, id);
CREATE INDEX groups_created ON groups (tenant_id, created_at, id);
