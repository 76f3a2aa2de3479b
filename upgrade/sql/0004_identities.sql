-- Version 4: who each hub user is at a login method. A user has at most
-- one identity (a login method and the subject it vouched for), so a
-- second identity whose name maps onto an existing user is refused, never
-- merged. Users get the kind of account their servers run as: a Linux
-- account, or none at all (a systemd dynamic user).
--
-- Every user so far logged in with PAM, whose subject is the Linux name.

CREATE TABLE identities (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    method     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    email      TEXT NOT NULL DEFAULT '',
    created    TEXT NOT NULL,
    last_login TEXT,
    UNIQUE (method, subject)
);

INSERT INTO identities (user_id, method, subject, created, last_login)
SELECT id, 'pam', name, created, last_activity FROM users;

ALTER TABLE users ADD COLUMN account TEXT NOT NULL DEFAULT 'linux'
    CHECK (account IN ('linux', 'dynamic'));
