"""Differential test of the worker's C speedups against their pure-Python
twins: same results on nginx's packets, on mutations of them and on random
bytes. Run by uwsgictl/daemon/speedups_test.go; argv[1] is the directory of
the built _pyvhost_speedups, argv[2] the worker program (its __main__.py)."""
import json
import os
import re
import random
import socket
import struct
import sys

os.environ["PYVHOST_WORKER"] = json.dumps({"app_id": "selftest", "script": "m", "pyhome": "/v", "chdir": "/a",
                                          "slots": 2, "speedups_dir": sys.argv[1], "logging": True, "vhost": True,
                                          "app_num": 3, "socket_timeout_ms": 4000,
                                          "protocol": json.loads(os.environ["PYVHOST_PROTOCOL"])})
sys.path.insert(0, sys.argv[1])
import _pyvhost_speedups as c  # noqa: E402

sys.path.insert(0, os.path.dirname(sys.argv[2]))  # the worker program's dir: the pyvhost_worker package
from pyvhost_worker import common, wsgi  # noqa: E402
import pyvhost_worker.worker as w  # noqa: E402
common.LOG_FD = 2  # the log lines go where each request's check redirects fd 2


def packet(pairs):
    blk = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in pairs)
    return struct.pack("<BHB", 0, len(blk), 0) + blk


def check_parse(data, end):
    got_c = c.parse_vars(data, end)
    got_py, pos = w.parse_vars_py(data, end, 1 << 30)
    if got_py is None:
        assert got_c is None, (data, end, got_c)
    else:
        assert got_c == got_py, (data, end, got_c, got_py)
    return got_py


def check_finish(env, key):
    e1, e2 = dict(env), dict(env)
    static = {"wsgi.version": (1, 0), "wsgi.run_once": False}
    r1 = c.finish_environ(e1, key, static)
    r2 = w.finish_environ_py(e2, key, static)
    assert r1 == r2, (env, key, r1, r2)
    assert e1 == e2, (env, key, e1, e2)


rng = random.Random(1234)
base = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/blog/x"), (b"SCRIPT_NAME", b"/blog"),
        (b"UWSGI_PYHOME", b"/v"), (b"UWSGI_CHDIR", b"/a"), (b"UWSGI_SCRIPT", b"m"), (b"HTTPS", b"On"),
        (b"HTTP_CONTENT_LENGTH", b"3"), (b"HTTP_COOKIE", b"\xe9t\xe9")]
values = [b"", b"/", b"/blog", b"/blog/", b"/blogroll", b"on", b"1", b"TRUE", b"off", b"https", b"m", b"/v", b"/a",
          b"pkg.w", b"app", b"exec://x", b"\xff\x00"]
keys = [b"REQUEST_METHOD", b"PATH_INFO", b"SCRIPT_NAME", b"UWSGI_PYHOME", b"UWSGI_HOME", b"UWSGI_CHDIR",
        b"UWSGI_SCRIPT", b"UWSGI_MODULE", b"UWSGI_CALLABLE", b"UWSGI_FILE", b"UWSGI_SETENV", b"UWSGI_POSTFILE",
        b"HTTPS", b"UWSGI_SCHEME", b"REQUEST_SCHEME", b"HTTP_CONTENT_TYPE", b"HTTP_CONTENT_LENGTH", b"X"]
n = 0
for line in open(sys.argv[3]):
    pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(line)["vars"]]
    data = packet(pairs)
    check_parse(data, len(data))
    n += 1
for i in range(20000):
    pairs = list(base) if i % 2 else []
    for _ in range(rng.randrange(0, 8)):
        pairs.append((rng.choice(keys), rng.choice(values)))
    rng.shuffle(pairs)
    data = packet(pairs)
    if i % 5 == 0:  # mutate: flip, cut or extend bytes
        b = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            if b and rng.random() < 0.5:
                b[rng.randrange(4, len(b)) if len(b) > 4 else 0] = rng.randrange(256)
            else:
                b += bytes([rng.randrange(256)])
        data = bytes(b)
    end = min(len(data), 4 + (data[1] | data[2] << 8)) if len(data) >= 4 else len(data)
    env = check_parse(data, end)
    if env is not None:
        for key in (None, ("/v", "/a", "m"), ("", "", ""), ("/v", "/a", "pkg.w:app")):
            check_finish(env, key)
    n += 1

# The C path against the Python path: the same request through the C
# serve() and through Worker.handle (the pure-Python twin) must write the
# same bytes, for apps that use every part of WSGI.
import mmap  # noqa: E402
import tempfile  # noqa: E402


class Closing(object):
    closed = 0

    def __init__(self, chunks):
        self.chunks = chunks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        Closing.closed += 1


def app_for(kind):
    def app(environ, start_response):
        h = [("Content-Type", "text/plain")]
        if kind == "list":
            start_response("200 OK", h)
            return [b"hello"]
        if kind == "tuple":
            start_response("201 Created", h + [("content-length", "5")])
            return (b"he", b"llo")
        if kind == "empty":
            start_response("204 No Content", [])
            return []
        if kind == "gen":
            start_response("200 OK", h)
            return (x for x in [b"a", b"", b"bc"])
        if kind == "write":
            w = start_response("200 OK", h)
            w(b"written;")
            return [b"returned"]
        if kind == "closing":
            start_response("200 OK", h)
            return Closing([b"x", b"y"])
        if kind == "echo":
            body = environ["wsgi.input"].read()
            start_response("200 OK", h)
            return [body, environ["PATH_INFO"].encode(), environ["SCRIPT_NAME"].encode(), environ["wsgi.url_scheme"].encode()]
        if kind == "partial-read":
            environ["wsgi.input"].read(1)
            start_response("200 OK", h)
            return [b"partial"]
        if kind == "raise":
            raise RuntimeError("boom")
        if kind == "exc_info":
            try:
                raise ValueError("late")
            except ValueError:
                start_response("500 Oops", h, sys.exc_info())
            return [b"recovered"]
        if kind == "twice":
            start_response("200 OK", h)
            start_response("200 OK", h)
            return [b""]
        if kind == "no-start":
            return [b"x"]
        if kind == "list-header":
            start_response("200 OK", [["Content-Type", "text/plain"], ["Content-Length", "1"]])
            return [b"x"]
        if kind == "short-header":
            start_response("200 OK", [("X",)])
            return [b"x"]
        if kind == "bad-header":
            start_response("200 OK", [("X", 1)])
            return [b"x"]
        if kind == "not-latin1":
            start_response("200 OK", [("X", "\u20ac")])
            return [b"x"]
        if kind == "latin1":
            start_response("200 OK", [("X-Name", "caf\xe9"), ("X-Long", "v" * 600)])
            return [b"x"]
        if kind == "crlf-header":  # response splitting: refused, 500
            start_response("200 OK", [("X-A", "ok\r\nSet-Cookie: evil=1")])
            return [b"x"]
        if kind == "lf-header":
            start_response("200 OK", [("X-A", "ok\nX-B: 2")])
            return [b"x"]
        if kind == "nul-header":
            start_response("200 OK", [("X-A", "a\0b")])
            return [b"x"]
        if kind == "token-header":
            start_response("200 OK", [("X A", "1")])
            return [b"x"]
        if kind == "colon-header":
            start_response("200 OK", [("X-A:", "1")])
            return [b"x"]
        if kind == "empty-name":
            start_response("200 OK", [("", "1")])
            return [b"x"]
        if kind == "hop-header":
            start_response("200 OK", [("Connection", "close")])
            return [b"x"]
        if kind == "hop-header-case":
            start_response("200 OK", [("transfer-ENCODING", "chunked")])
            return [b"x"]
        if kind == "crlf-status":
            start_response("200 OK\r\nX-Evil: 1", h)
            return [b"x"]
        if kind == "str-body":
            start_response("200 OK", h)
            return ["text"]
        if kind == "raise-in-gen":
            start_response("200 OK", h)

            def g():
                yield b"first"
                raise RuntimeError("mid-stream")
            return g()
        if kind == "file":
            f = tempfile.TemporaryFile()
            f.write(b"file body " * 1000)
            f.seek(5)
            start_response("200 OK", h)
            return environ["wsgi.file_wrapper"](f)
        raise AssertionError(kind)
    return app


KINDS = ["list", "tuple", "empty", "gen", "write", "closing", "echo", "partial-read", "raise", "exc_info", "twice",
         "no-start", "list-header", "short-header", "bad-header", "not-latin1", "latin1", "str-body", "raise-in-gen", "file",
         "crlf-header", "lf-header", "nul-header", "token-header", "colon-header", "empty-name", "hop-header",
         "hop-header-case", "crlf-status"]
REFUSED_KINDS = KINDS[KINDS.index("crlf-header"):]


def request(pairs, body=b""):
    return packet([(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]) + body


VARS = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/blog/x"), ("SCRIPT_NAME", "/blog/"), ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("UWSGI_PYHOME", "/v"), ("UWSGI_CHDIR", "/a"), ("UWSGI_SCRIPT", "m"), ("REQUEST_SCHEME", "https")]
REQUESTS = [request(VARS), request(VARS + [("CONTENT_LENGTH", "11")], b"hello world"),
            request([("REQUEST_METHOD", "GET"), ("UWSGI_PYHOME", "/v"), ("UWSGI_CHDIR", "/a"), ("UWSGI_SCRIPT", "m")]),
            request(VARS + [("CONTENT_LENGTH", "3")], b"hello")]
# CONTENT_LENGTH that is not a number of bytes: both paths answer 400 without calling the app
BAD_LENGTH = [request(VARS + [("CONTENT_LENGTH", cl)], b"hello") for cl in ("x1", "-5", "5_0", " 5", "+5")]
REQUESTS += BAD_LENGTH
saved_stderr = os.dup(2)
LOGGED = re.compile(r"^.*\[pid: \d+\|app: .*$", re.M)
WHEN = re.compile(r"\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\]| in \d+ msecs")
with tempfile.TemporaryFile() as f:
    size = w.APP_HEADER + 2 * w.SLOT_SIZE
    f.truncate(size)
    c.sb_map(f.fileno(), size)
    sb = mmap.mmap(f.fileno(), size)
    checked = 0
    for kind in KINDS:
        for req in REQUESTS:
            outs = []
            for use_c in (True, False):
                wk = w.Worker(app_for(kind), 0 if use_c else 1)
                wk.open_scoreboard(sb, use_c)
                if use_c:
                    wk.resp = c.Responder()
                    wk.start_response = wk.resp.start_response
                    wk.start_c_path()
                else:
                    wk.resp = wsgi.Response()
                    wk.start_response = wk.resp.start_response
                    w.parse_vars_c = w.finish_environ_c = None  # the pure-Python twins
                a, b = socket.socketpair()
                a.sendall(req)
                conn = b.detach()
                logf = tempfile.TemporaryFile()
                os.dup2(logf.fileno(), 2)  # the request's log line, and the apps' expected tracebacks
                try:
                    if use_c:
                        slow = c.serve(conn, b"", False)
                        assert slow is None, (kind, slow)
                    else:
                        wk.handle(conn, b"", False)
                finally:
                    os.dup2(saved_stderr, 2)
                    w.parse_vars_c, w.finish_environ_c = c.parse_vars, c.finish_environ
                a.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    chunk = a.recv(65536)
                    if not chunk:
                        break
                    out += chunk
                a.close()
                off = w.APP_HEADER + (0 if use_c else w.SLOT_SIZE)
                logf.seek(0)
                logged = WHEN.sub("", "\n".join(LOGGED.findall(logf.read().decode("latin-1"))))
                logf.close()
                assert logged.count("[pid: %d|app: 3|req: 1/1] " % os.getpid()) == 1, (kind, req, use_c, logged)  # one line
                outs.append((out, logged, struct.unpack_from("<QQQ", sb, off + 16)[0:1] + struct.unpack_from("<QQ", sb, off + 32)[:1]
                             + struct.unpack_from("<Q", sb, off + 48) + struct.unpack_from("<5Q", sb, off + common.SB_CLASSES)))
                assert sum(outs[-1][2][-5:]) == 1, (kind, req, use_c, outs[-1][2])  # each answer in one status class
                for o in (off, ):  # the slots start each request equal
                    sb[o:o + w.SLOT_SIZE] = bytes(w.SLOT_SIZE)
            assert outs[0] == outs[1], (kind, req, outs[0], outs[1])
            if req in BAD_LENGTH:
                assert outs[0][0].startswith(b"HTTP/1.1 400 "), (kind, req, outs[0][0])
                continue
            if kind in REFUSED_KINDS:  # the app's bad header never reaches the socket
                assert outs[0][0].split(b" ")[1] == b"500" and b"evil" not in outs[0][0].lower() and b"X-A" not in outs[0][0], (kind, outs[0][0])
            if kind == "echo" and req is REQUESTS[0]:
                example = outs[0][1]
            checked += 1
    assert Closing.closed == 2 * (len(REQUESTS) - len(BAD_LENGTH)), Closing.closed  # a 400 calls no app

    # The scoreboard writers against the struct-based ones: two workers'
    # slots, written the same way, must hold the same bytes (but for the
    # wall-clock millisecond, which each takes itself).
    wk = w.Worker(app_for("list"), 1)
    wk.open_scoreboard(sb, False)
    offs = (w.APP_HEADER, w.APP_HEADER + w.SLOT_SIZE)
    wk.pid = wk.sb.pid = 4242
    for env in ({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, {"REQUEST_METHOD": "POST", "PATH_INFO": "/\xe9" + "p" * 80},
                {"PATH_INFO": "/no-method"}, {"REQUEST_METHOD": "GET", "PATH_INFO": "/\u20ac"}, {}):
        for dur in (-1, 0, 999, 1000, 1500, 3 * 10 ** 6, 10 ** 18):
            c.sb_begin(offs[0], 4242, 77)
            wk.mark_busy(77)
            assert sb[offs[0]:offs[0] + 128] == sb[offs[1]:offs[1] + 128], "sb_begin"
            c.sb_request(offs[0], env)
            wk.mark_request(env)
            assert sb[offs[0]:offs[0] + 128] == sb[offs[1]:offs[1] + 128], (env, sb[offs[0]:offs[0] + 128], sb[offs[1]:offs[1] + 128])
            status = (0, 101, 200, 302, 404, 503, 600, 99)[dur % 8]
            c.sb_count(offs[0], 1, dur % 2, 300, 2, status)
            wk.count(requests=1, errors=dur % 2, tx=300, forwarded=2, status=status)
            assert c.sb_served(offs[0]) == wk.served()
            c.sb_finish(offs[0], 4242, dur)
            wk.finish_stats(dur)
            sb[offs[1] + 40:offs[1] + 48] = sb[offs[0] + 40:offs[0] + 48]  # last request's wall clock
            assert sb[offs[0]:offs[0] + w.SLOT_SIZE] == sb[offs[1]:offs[1] + w.SLOT_SIZE], (env, dur)
    try:
        c.sb_begin(size, 1, 1)
    except ValueError:
        pass
    else:
        raise AssertionError("a slot past the scoreboard was written")
print("ok %d packets, %d requests; a log line: %s" % (n, checked, example))
