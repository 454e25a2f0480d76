DROP TABLE mail_outbox;
DROP INDEX verification_user_id_idx;
ALTER TABLE verification DROP COLUMN purpose;
ALTER TABLE verification DROP COLUMN user_id;
