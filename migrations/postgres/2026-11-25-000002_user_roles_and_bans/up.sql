-- Better Auth's admin plugin columns.
ALTER TABLE "user" ADD COLUMN role text NOT NULL DEFAULT 'user';
ALTER TABLE "user" ADD COLUMN banned boolean NOT NULL DEFAULT false;
ALTER TABLE "user" ADD COLUMN ban_reason text;
ALTER TABLE "user" ADD COLUMN ban_expires timestamp;
