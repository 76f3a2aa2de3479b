-- Version 2: servers remember when, why and by whom they were stopped, the
-- activity the proxy saw and the version the server announced; server
-- states are constrained. SQLite cannot add a CHECK to an existing table,
-- so the table is rebuilt (foreign keys are off for the duration; the
-- engine runs foreign_key_check before commit).

CREATE TABLE servers_new (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name           TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL DEFAULT 'stopped'
                   CHECK (state IN ('stopped', 'starting', 'running', 'stopping', 'failed')),
    spawner        TEXT NOT NULL DEFAULT '',
    spawner_state  TEXT NOT NULL DEFAULT '{}',
    ip             TEXT NOT NULL DEFAULT '',
    port           INTEGER NOT NULL DEFAULT 0,
    started        TEXT,
    last_activity  TEXT,
    proxy_activity TEXT,
    token_hash     TEXT,
    user_options   TEXT NOT NULL DEFAULT '{}',
    version        TEXT NOT NULL DEFAULT '',
    stopped_at     TEXT,
    stop_reason    TEXT NOT NULL DEFAULT '',
    stopped_by     TEXT NOT NULL DEFAULT '',
    UNIQUE (user_id, name)
);

INSERT INTO servers_new (id, user_id, name, state, spawner, spawner_state, ip, port,
                         started, last_activity, token_hash, user_options)
SELECT id, user_id, name,
       CASE WHEN state IN ('stopped', 'starting', 'running', 'stopping', 'failed') THEN state ELSE 'stopped' END,
       spawner, spawner_state, ip, port, started, last_activity, token_hash, user_options
FROM servers;

DROP TABLE servers;
ALTER TABLE servers_new RENAME TO servers;
CREATE INDEX servers_state ON servers(state);

CREATE INDEX events_time ON events(time);
