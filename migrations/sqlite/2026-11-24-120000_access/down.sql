DROP INDEX tokens_basic_username;
ALTER TABLE tokens DROP COLUMN last_used_at;
ALTER TABLE tokens DROP COLUMN basic_username;
ALTER TABLE tokens DROP COLUMN user_id;
ALTER TABLE tokens DROP COLUMN read_only;
DROP TABLE roles;
