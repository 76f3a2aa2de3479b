# JupyterHub 3.0.0 (Debian's package) as the benchmarks' anchor, started by
# bench/cmd/hubbench on loopback with configurable-http-proxy 5.3.0 from npm.
# Everything comes from the environment the driver sets:
#   BENCH_JH_DIR    state directory (sqlite DB, cookie secret, CHP pid file)
#   BENCH_JH_PORT   public port; the CHP API is +1 and the hub itself +2
#   BENCH_JH_TOKEN  token of an admin service the driver calls the API with
#   BENCH_CHP       configurable-http-proxy executable
#   BENCH_JH_AUTH   "dummy" (any name and password) or "pam"
#   BENCH_PAM_SERVICE, BENCH_PAM_GROUP   PAM service and allowed group for "pam"
import os

d = os.environ["BENCH_JH_DIR"]
port = int(os.environ["BENCH_JH_PORT"])

c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = port + 2
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port + 1}"
c.ConfigurableHTTPProxy.command = [os.environ["BENCH_CHP"]]
c.ConfigurableHTTPProxy.pid_file = f"{d}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{d}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{d}/cookie_secret"
c.JupyterHub.pid_file = f"{d}/hub.pid"
c.JupyterHub.log_level = "WARN"
# The startup benchmark records servers whose pid is the driver's shared
# backend: the hub must not stop them when it exits. The spawn benchmark
# stops its servers through the API before stopping the hub.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.active_server_limit = 0
c.JupyterHub.spawner_class = "simple"
# The mock single-user server that ships with JupyterHub (echoes the path).
c.Spawner.cmd = ["/usr/bin/python3", "-m", "jupyterhub.tests.mocksu"]
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.JupyterHub.services = [{"name": "bench", "api_token": os.environ["BENCH_JH_TOKEN"], "admin": True}]

if os.environ.get("BENCH_JH_AUTH", "dummy") == "pam":
    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.service = os.environ["BENCH_PAM_SERVICE"]
    c.PAMAuthenticator.open_sessions = False
    c.PAMAuthenticator.allowed_groups = {os.environ["BENCH_PAM_GROUP"]}
else:
    c.JupyterHub.authenticator_class = "dummy"
