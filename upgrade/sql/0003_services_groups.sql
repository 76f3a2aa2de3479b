-- Version 3: services (programs that hold API tokens without being users)
-- and hub groups (named sets of users, with JSON properties).
-- A token now belongs to exactly one user or one service: api_tokens is
-- rebuilt because SQLite cannot relax a NOT NULL or add a CHECK in place
-- (foreign keys are off for the duration; the engine runs
-- foreign_key_check before commit). OAuth clients may belong to a
-- service, so a service's URL can log visitors in as a server's can.

CREATE TABLE services (
    id      INTEGER PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);

CREATE TABLE groups (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    properties TEXT NOT NULL DEFAULT '{}',
    created    TEXT NOT NULL
);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE api_tokens_new (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
    service_id    INTEGER REFERENCES services(id) ON DELETE CASCADE,
    hash          TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    kind          TEXT NOT NULL,
    server_id     INTEGER REFERENCES servers(id) ON DELETE CASCADE,
    client_id     TEXT,
    session_id    TEXT,
    scopes        TEXT NOT NULL DEFAULT '[]',
    note          TEXT NOT NULL DEFAULT '',
    created       TEXT NOT NULL,
    expires_at    TEXT,
    last_activity TEXT,
    CHECK ((user_id IS NULL) <> (service_id IS NULL))
);

INSERT INTO api_tokens_new (id, user_id, hash, prefix, kind, server_id, client_id, session_id, scopes, note,
                            created, expires_at, last_activity)
SELECT id, user_id, hash, prefix, kind, server_id, client_id, session_id, scopes, note,
       created, expires_at, last_activity
FROM api_tokens;

DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE INDEX api_tokens_service ON api_tokens(service_id);
CREATE INDEX api_tokens_session ON api_tokens(session_id);

ALTER TABLE oauth_clients ADD COLUMN service_id INTEGER REFERENCES services(id) ON DELETE CASCADE;
