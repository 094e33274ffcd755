"""Echoes the WSGI environ as JSON (wrapped in wsgiref's validator, so any
PEP 3333 violation by the server fails the request); POST bodies are read
through wsgi.input and their size and checksum reported."""
import hashlib
import json
import os
import sys
from wsgiref.validate import validator


def _app(environ, start_response):
    chunks = []
    while True:  # read(size): the validator refuses read() without one
        chunk = environ["wsgi.input"].read(65536)
        if not chunk:
            break
        chunks.append(chunk)
    body = b"".join(chunks)
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    out["wsgi.url_scheme"] = environ["wsgi.url_scheme"]
    out["wsgi.multiprocess"] = environ["wsgi.multiprocess"]
    out["wsgi.multithread"] = environ["wsgi.multithread"]
    out["body_len"] = len(body)
    out["body_sha256"] = hashlib.sha256(body).hexdigest()
    out["pid"] = os.getpid()
    out["uid"] = os.getuid()
    out["cwd"] = os.getcwd()
    out["python"] = "%d.%d" % sys.version_info[:2]
    out["os_environ"] = {k: v for k, v in os.environ.items() if not k.startswith("PYVHOST_")}
    data = json.dumps(out, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


application = validator(_app)
