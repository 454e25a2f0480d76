DROP TABLE passkey;
