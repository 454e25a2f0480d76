DROP TABLE apexkit_migration;
DROP TABLE audit_event;
