DROP INDEX IF EXISTS signing_key_one_active;
DROP TABLE IF EXISTS signing_key;
