"""The worker's response-header checks, C and Python, for the Go fuzz
target FuzzWorkerHeaders (uwsgictl/daemon/fuzz_headers_test.go): each
stdin line is a JSON [name, value] (latin-1 code points); the app sends
that one header; the answer line is a JSON {"c": ..., "py": ...}, each the
status line and whether the header reached the socket, or the first
difference. argv: the speedups' directory, the worker program (its __main__.py)."""
import json
import os
import socket
import sys

os.environ["PYVHOST_WORKER"] = json.dumps({"app_id": "fuzz", "script": "m", "pyhome": "/v", "chdir": "/a",
                                          "slots": 2, "speedups_dir": sys.argv[1], "logging": False, "vhost": True,
                                          "app_num": 1, "socket_timeout_ms": 4000,
                                          "protocol": json.loads(os.environ["PYVHOST_PROTOCOL"])})
sys.path.insert(0, sys.argv[1])
import _pyvhost_speedups as c  # noqa: E402
import mmap  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.dirname(sys.argv[2]))  # the worker program's dir: the pyvhost_worker package
from pyvhost_worker import common, wsgi  # noqa: E402
import pyvhost_worker.worker as w  # noqa: E402
common.LOG_FD = os.open(os.devnull, os.O_WRONLY)  # the app's refused headers are logged: not here

HEADER = [None]


def app(environ, start_response):
    start_response("200 OK", [HEADER[0]])
    return [b"body"]


def packet(pairs):
    blk = b"".join(len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v for k, v in pairs)
    return bytes([0]) + len(blk).to_bytes(2, "little") + bytes([0]) + blk


REQ = packet([(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
              (b"UWSGI_PYHOME", b"/v"), (b"UWSGI_CHDIR", b"/a"), (b"UWSGI_SCRIPT", b"m")])

f = tempfile.TemporaryFile()
size = w.APP_HEADER + 2 * w.SLOT_SIZE
f.truncate(size)
c.sb_map(f.fileno(), size)
sb = mmap.mmap(f.fileno(), size)
workers = []
for use_c in (True, False):
    wk = w.Worker(app, 0 if use_c else 1)
    wk.open_scoreboard(sb, use_c)
    if use_c:
        wk.resp = c.Responder()
        wk.start_response = wk.resp.start_response
        wk.start_c_path()
    else:
        wk.resp = wsgi.Response()
        wk.start_response = wk.resp.start_response
    workers.append((use_c, wk))


def answer(use_c, wk):
    a, b = socket.socketpair()
    a.sendall(REQ)
    conn = b.detach()
    if use_c:
        w.parse_vars_c, w.finish_environ_c = c.parse_vars, c.finish_environ
        assert c.serve(conn, b"", False) is None
    else:
        w.parse_vars_c = w.finish_environ_c = None
        wk.handle(conn, b"", False)
    a.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = a.recv(65536)
        if not chunk:
            break
        out += chunk
    a.close()
    return out.decode("latin-1")

for line in sys.stdin:
    name, value = json.loads(line)
    HEADER[0] = (name, value)
    got = {("c" if use_c else "py"): answer(use_c, wk) for use_c, wk in workers}
    sys.stdout.write(json.dumps(got) + "\n")
    sys.stdout.flush()
