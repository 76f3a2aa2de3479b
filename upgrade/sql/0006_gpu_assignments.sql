-- Version 6: GPUs of the hub's pool handed to servers, each GPU to one
-- server at a time. A row lives while its server is active: stopping the
-- server (or deleting it) frees the GPU, and the rows survive hub restarts.

CREATE TABLE gpu_assignments (
    gpu       INTEGER PRIMARY KEY,
    device    TEXT NOT NULL,
    server_id INTEGER NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    assigned  TEXT NOT NULL
);
CREATE INDEX gpu_assignments_server ON gpu_assignments(server_id);
