DROP TABLE tokens;
DROP TABLE group_roles;
DROP TABLE group_members;
DROP TABLE groups;
DROP TABLE user_emails;
DROP TABLE users;
DROP TABLE tenants;
