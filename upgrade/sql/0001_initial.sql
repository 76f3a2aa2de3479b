-- Version 1: the first hubd schema.
-- Timestamps are UTC text in one fixed-width form (2026-11-23T18:16:15.705850Z)
-- so that text order is time order.

CREATE TABLE schema (
    id         INTEGER PRIMARY KEY,
    version    INTEGER NOT NULL UNIQUE,
    applied_at TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    admin         INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL,
    last_activity TEXT,
    cookie_id     TEXT NOT NULL UNIQUE
);

CREATE TABLE servers (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL DEFAULT 'stopped',
    spawner       TEXT NOT NULL DEFAULT '',
    spawner_state TEXT NOT NULL DEFAULT '{}',
    ip            TEXT NOT NULL DEFAULT '',
    port          INTEGER NOT NULL DEFAULT 0,
    started       TEXT,
    last_activity TEXT,
    token_hash    TEXT,
    user_options  TEXT NOT NULL DEFAULT '{}',
    UNIQUE (user_id, name)
);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
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
    last_activity TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE INDEX api_tokens_session ON api_tokens(session_id);

CREATE TABLE oauth_clients (
    id           INTEGER PRIMARY KEY,
    identifier   TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    server_id    INTEGER REFERENCES servers(id) ON DELETE CASCADE,
    created      TEXT NOT NULL
);

CREATE TABLE oauth_codes (
    id           INTEGER PRIMARY KEY,
    code_hash    TEXT NOT NULL UNIQUE,
    client_id    TEXT NOT NULL REFERENCES oauth_clients(identifier) ON DELETE CASCADE,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    session_id   TEXT,
    scopes       TEXT NOT NULL DEFAULT '[]',
    expires_at   TEXT NOT NULL
);

CREATE TABLE login_sessions (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created     TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    last_seen   TEXT,
    client_addr TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX login_sessions_user ON login_sessions(user_id);

CREATE TABLE events (
    id        INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    actor     TEXT NOT NULL DEFAULT '',
    actor_uid INTEGER,
    source    TEXT NOT NULL DEFAULT '',
    action    TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT ''
);
