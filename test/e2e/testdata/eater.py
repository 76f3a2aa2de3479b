# A stand-in single-user server for the memory-limit test: it answers the
# hub's readiness probe under its prefix, and on GET <prefix>eat allocates
# memory until the kernel kills it at the unit's MemoryMax.
import http.server
import os
import urllib.parse

url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
prefix = url.path
hog = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith(prefix + "eat"):
            while True:
                hog.append(bytearray(32 << 20))
        self.send_response(200)
        self.send_header("X-JupyterHub-Version", "3.0.0")
        self.end_headers()
        self.wfile.write(b"eater\n")

    def log_message(self, *args):
        pass


http.server.HTTPServer((url.hostname, url.port), Handler).serve_forever()
