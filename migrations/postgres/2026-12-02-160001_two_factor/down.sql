DROP TABLE email_code;
DROP TABLE trusted_device;
DROP TABLE two_factor_challenge;
DROP TABLE two_factor_backup_code;
DROP TABLE two_factor;
