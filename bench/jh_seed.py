"""Seed JupyterHub 3.0.0's sqlite DB for the startup and API benchmarks.

Usage: python3 jh_seed.py DB USERS SERVERS LIVE_PID LIVE_PORT DEAD_PID

Creates users u1..uUSERS holding the default 'user' role (as users created
through the API do), and for u1..uSERVERS a recorded running default server
(SimpleLocalProcessSpawner state {"pid": ...}): the odd ones point at the
driver's live backend (LIVE_PID, LIVE_PORT), the even ones at a process that
has exited (DEAD_PID). Bulk inserts through JupyterHub's own ORM tables, so
the schema is exactly what the hub expects.
"""
import sys
from datetime import datetime

from jupyterhub import orm, roles
from jupyterhub.utils import new_token


def main():
    db_path, n_users, n_servers, live_pid, live_port, dead_pid = sys.argv[1:7]
    n_users, n_servers = int(n_users), int(n_servers)
    db = orm.new_session_factory(f"sqlite:///{db_path}")()
    for spec in roles.get_default_roles():
        roles.create_role(db, spec)
    db.commit()
    user_role = orm.Role.find(db, "user")
    now = datetime.utcnow()
    db.execute(
        orm.User.__table__.insert(),
        [
            dict(id=i, name=f"u{i}", admin=False, created=now, last_activity=now, cookie_id=new_token(), state={})
            for i in range(1, n_users + 1)
        ],
    )
    user_role_map = orm.Base.metadata.tables["user_role_map"]
    db.execute(user_role_map.insert(), [dict(user_id=i, role_id=user_role.id) for i in range(1, n_users + 1)])
    db.execute(
        orm.Server.__table__.insert(),
        [
            dict(id=i, proto="http", ip="127.0.0.1", port=int(live_port), base_url=f"/user/u{i}/", cookie_name="cookie")
            for i in range(1, n_servers + 1)
        ],
    )
    db.execute(
        orm.Spawner.__table__.insert(),
        [
            dict(
                user_id=i,
                server_id=i,
                name="",
                started=now,
                last_activity=now,
                user_options={},
                state={"pid": int(live_pid) if i % 2 else int(dead_pid)},
            )
            for i in range(1, n_servers + 1)
        ],
    )
    db.commit()


if __name__ == "__main__":
    main()
