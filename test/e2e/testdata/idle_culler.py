#!/usr/bin/python3
"""An idle culler for hubd's end-to-end tests, written the way the stock
jupyterhub-idle-culler works, on the Python standard library only.

It reads JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN (as the hub gives
any service), checks the hub's version, pages through
/users?state=ready with the pagination media type (following
_pagination.next.url verbatim), and stops every ready server idle for
longer than --timeout (named ones with DELETE .../servers/<name>), every
--cull-every seconds. It needs list:users, read:users:activity,
read:servers and delete:servers, as the stock culler does.
"""
import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from urllib.parse import quote

API = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
TOKEN = os.environ["JUPYTERHUB_API_TOKEN"]


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def call(method, url, body=None, accept="application/json"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": "token " + TOKEN, "Accept": accept, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)


def parse_date(s):
    if s is None:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def ready_users():
    url = API + "/users?state=ready&limit=2"
    while url:
        _, page = call("GET", url, accept="application/jupyterhub-pagination+json")
        if isinstance(page, list):  # a hub that does not paginate
            yield from page
            return
        yield from page["items"]
        nxt = page["_pagination"]["next"]
        url = nxt["url"] if nxt else None


def cull(timeout):
    now = datetime.now(timezone.utc)
    for user in ready_users():
        for name, server in user["servers"].items():
            if server["pending"] or not server["ready"]:
                continue
            seen = parse_date(server["last_activity"]) or parse_date(server["started"])
            idle = (now - seen).total_seconds()
            if idle < timeout:
                continue
            path = "/users/%s/server" % quote(user["name"], safe="")
            if name:
                path = "/users/%s/servers/%s" % (quote(user["name"], safe=""), quote(name, safe=""))
            status, _ = call("DELETE", API + path)
            log("culled %s/%s (idle %ds): HTTP %d" % (user["name"], name, idle, status))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--timeout", type=int, default=600)
    p.add_argument("--cull-every", type=int, default=0)
    args = p.parse_args()
    every = args.cull_every or args.timeout // 2
    _, info = call("GET", API + "/")
    log("hub version", info["version"], "timeout", args.timeout, "every", every)
    while True:
        try:
            cull(args.timeout)
        except urllib.error.HTTPError as e:
            log("cull failed: HTTP", e.code, e.read().decode(errors="replace"))
        except OSError as e:
            log("cull failed:", e)
        time.sleep(every)


if __name__ == "__main__":
    sys.exit(main())
