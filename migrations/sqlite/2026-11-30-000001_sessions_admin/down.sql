DROP TABLE setup_codes;
DROP TABLE admin_sessions;
DROP INDEX admins_only_one;
