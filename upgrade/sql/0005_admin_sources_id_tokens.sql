-- Version 5: where a user's admin flag comes from, and the ID token of a
-- single sign-on session.
--
-- users.admin stays the flag every check reads; it is now admin_grant OR
-- admin_rule <> ''. admin_grant is set by an admin by hand (hubtui,
-- hubd user admin, the REST API) and survives logins; admin_rule names the
-- login rule that made the user an admin at their last login ('' for
-- none), and each login sets it again. Admins so far were either made so
-- by the rules at their last login or set through the API, which the next
-- login overwrote: both keep that behaviour as 'login rules'.
--
-- login_sessions.id_token is the provider's ID token of a single sign-on,
-- sent back as id_token_hint when logout ends the provider's session too.
-- It stays on the hub, never in a cookie.

ALTER TABLE users ADD COLUMN admin_grant INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN admin_rule TEXT NOT NULL DEFAULT '';
UPDATE users SET admin_rule = 'login rules' WHERE admin;

ALTER TABLE login_sessions ADD COLUMN id_token TEXT NOT NULL DEFAULT '';
