DROP INDEX groups_created;
DROP INDEX users_modified;
DROP INDEX users_created;
