-- RFC 7644 §3.5.2.2: removing `active` leaves it unassigned. An unassigned user is stored with
-- active = FALSE (it is denied everything) and active_assigned = FALSE (SCIM shows no `active`).
ALTER TABLE users ADD COLUMN active_assigned BOOLEAN NOT NULL DEFAULT TRUE;
