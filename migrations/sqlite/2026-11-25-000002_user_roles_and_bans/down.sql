ALTER TABLE "user" DROP COLUMN ban_expires;
ALTER TABLE "user" DROP COLUMN ban_reason;
ALTER TABLE "user" DROP COLUMN banned;
ALTER TABLE "user" DROP COLUMN role;
