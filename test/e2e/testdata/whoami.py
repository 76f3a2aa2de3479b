#!/usr/bin/python3
"""A JupyterHub service with a web page, for hubd's end-to-end tests.

It uses JupyterHub's own service library (jupyterhub.services.auth, from
Debian's jupyterhub package) unchanged: visitors without its cookie are
sent through the hub's OAuth flow, as for any JupyterHub service. The page
says who the hub says the visitor is. Everything comes from the
environment the hub gives a service (JUPYTERHUB_SERVICE_URL,
JUPYTERHUB_SERVICE_PREFIX, JUPYTERHUB_API_TOKEN, ...).
"""
import html
import os
from urllib.parse import urlparse

from tornado import ioloop, web
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join


class WhoAmI(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    def get(self):
        user = self.get_current_user()
        self.write("<!doctype html><title>whoami</title><h1 id=\"whoami\">Hello, %s</h1>"
                   % html.escape(user["name"]))


def main():
    prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    app = web.Application([
        (prefix, WhoAmI),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=os.urandom(32))
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app.listen(url.port, url.hostname)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
