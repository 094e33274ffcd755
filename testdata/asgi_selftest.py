"""Differential test of the worker's ASGI speedups against their pure-Python
twins: the scope (asgi_scope vs scope_of_py) for random environs, the
response head (head_lines vs head_lines_py) for good and bad statuses and
headers, and whole requests through Exchange in C and in Python (what the
peer reads, the state after, every exception) on socket pairs, Ready as an
awaitable and a coroutine. Run by uwsgictl/daemon/speedups_test.go; argv[1]
is the directory of the built _pyvhost_speedups, argv[2] the worker program
(its __main__.py)."""
import asyncio
import json
import os
import random
import socket
import sys

os.environ["PYVHOST_WORKER"] = json.dumps({"app_id": "selftest", "script": "m", "pyhome": "/v", "chdir": "/a",
                                          "slots": 2, "speedups_dir": sys.argv[1], "socket_timeout_ms": 2000,
                                          "protocol": json.loads(os.environ["PYVHOST_PROTOCOL"])})
sys.path.insert(0, sys.argv[1])
import _pyvhost_speedups as c  # noqa: E402

sys.path.insert(0, os.path.dirname(sys.argv[2]))  # the worker program's dir: the pyvhost_worker package
from pyvhost_worker import asgi, exchange  # noqa: E402

assert asgi.scope_of is c.asgi_scope and asgi.head_lines is c.head_lines, "the speedups were not taken"
rng = random.Random(4321)


def outcome(f, *args):
    """What f(*args) gives: its value, or its exception's type and text."""
    try:
        return ("ok", f(*args))
    except Exception as e:
        return ("raised", type(e).__name__, str(e))


# -- the scope

PATHS = ["", "/", "/a b/c", "/\xc3\xa9t\xc3\xa9", "/\xff\xfe", "/blog/x", "/%2F", "/\xe9"]
VALUES = {
    "SCRIPT_NAME": ["", "/blog", "/\xc3\xa9", "/\xe9"],
    "REQUEST_URI": ["", "/a%20b/c?x=1", "/?", "?q", "/x?y?z", "/\xc3\xa9?\xff"],
    "QUERY_STRING": ["", "x=1&y=%C3%A9", "\xff", "a=\xe9"],
    "SERVER_PROTOCOL": ["", "HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3", "HTTP/9"],
    "wsgi.url_scheme": ["http", "https", "ftp"],
    "REMOTE_ADDR": ["", "127.0.0.1", "::1", "unix:"],
    "REMOTE_PORT": ["", "0", "80", "65535", "x", " 80", "8_0", "\xa080", "-1", "123456789012345678901"],
    "SERVER_NAME": ["", "bare.test", "\xe9.test"],
    "SERVER_PORT": ["", "443", "no"],
    "REQUEST_METHOD": ["GET", "post", "Delete", "", "\xe9"],
    "CONTENT_TYPE": ["", "text/plain", "\xe9"],
    "CONTENT_LENGTH": ["", "0", "8"],
}
HEADER_KEYS = ["HTTP_HOST", "HTTP_USER_AGENT", "HTTP_X_CUSTOM_THING", "HTTP_", "HTTP_A_B_C", "HTTPX", "HTTP_x_lower",
               "HTTP_\xe9", "HTTP_COOKIE"]


def random_env():
    env = {}
    if rng.random() < 0.9:
        env["PATH_INFO"] = rng.choice(PATHS)
    for k, vs in VALUES.items():
        if rng.random() < 0.7:
            env[k] = rng.choice(vs)
    for k in rng.sample(HEADER_KEYS, rng.randint(0, len(HEADER_KEYS))):
        env[k] = rng.choice(["", "v", "\xe9\xff", "a, b"])
    return env


def check_scopes(n):
    state = {"ready": True, "n": [1]}
    for _ in range(n):
        env = random_env()
        for kind in ("http", "websocket", "lifespan"):
            got_c, got_py = outcome(c.asgi_scope, dict(env), kind, state), outcome(asgi.scope_of_py, dict(env), kind, state)
            assert got_c == got_py, (env, kind, got_c, got_py)
            if got_c[0] == "ok":
                s = got_c[1]
                assert [type(v) for v in s.values()] == [type(got_py[1][k]) for k in s], (env, s)
                assert s["state"] == state and s["state"] is not state and s["asgi"] is asgi.SPEC, s
    for bad in ((None, "http", state), ({}, "http", None), ({"PATH_INFO": b"/"}, "http", {})):
        assert outcome(c.asgi_scope, *bad)[0] == outcome(asgi.scope_of_py, *bad)[0] == "raised", bad


# -- the response head

class Name(bytes):
    pass


STATUSES = [200, 404, 599, 100, 999, 99, 1000, 200.0, True, "200", None, 10 ** 30, -200]
GOOD = [(b"content-type", b"text/plain"), (b"Content-Length", b"3"), (b"x-a", b""), (Name(b"x-sub"), b"1"),
        [b"x-list", b"v"]]
BAD = [(b"bad name", b"v"), (b"", b"v"), (b"x", b"a\r\nb"), (b"x", b"\0"), (b"Connection", b"close"),
       (b"transfer-encoding", b"chunked"), ("str", "str"), (b"x",), (b"x", b"y", b"z"), b"xy", 5, "ab",
       (bytearray(b"x"), b"y"), {b"k": 1, b"l": 2}, (b"\xe9", b"v"), (b"x", 1)]


def check_heads():
    n = 0
    for proto in ("HTTP/1.1", "HTTP/1.0", "\u20ac"):
        for status in STATUSES:
            for _ in range(30):
                headers = rng.sample(GOOD, rng.randint(0, len(GOOD)))
                if rng.random() < 0.4:
                    headers.insert(rng.randint(0, len(headers)), rng.choice(BAD))
                for make in (list, tuple, lambda hs: iter(list(hs))):  # a list, a tuple, an iterator
                    a = outcome(c.head_lines, proto, status, make(headers))
                    b = outcome(asgi.head_lines_py, proto, status, make(headers))
                    assert a == b, (proto, status, headers, a, b)
                    n += 1
    return n


# -- whole requests through Exchange

class PyRequest(exchange.Waits, exchange.Exchange):
    pass


class CRequest(exchange.Waits, c.Exchange):
    pass


BIG = bytes(range(256)) * 20000  # 5 MB: more than a socket pair's buffer, so _write waits
SCRIPTS = [
    [{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]},
     {"type": "http.response.body", "body": b"hello"}],
    [{"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"2")]},
     {"type": "http.response.body", "body": b"o", "more_body": True}, {"type": "http.response.body", "body": b"k"}],
    [{"type": "http.response.start", "status": 200},
     {"type": "http.response.body", "body": bytearray(b"ba"), "more_body": True},
     {"type": "http.response.body", "body": memoryview(b"mv"), "more_body": 1}, {"type": "http.response.body"}],
    [{"type": "http.response.start", "status": 200}, {"type": "http.response.body", "body": BIG}],
    [{"type": "http.response.start", "status": 200}, {"type": "http.response.body", "body": b"x", "more_body": True},
     {"type": "http.response.body", "body": BIG, "more_body": True}, {"type": "http.response.body", "body": b"end"}],
    [{"type": "http.response.body", "body": b"early"}],
    [{"type": "http.response.start", "status": 200}, {"type": "http.response.start", "status": 200}],
    [{"type": "http.response.start", "status": 200}, {"type": "http.response.body"}, {"type": "http.response.body"}],
    [{"type": "http.response.start", "status": 200}, {"type": "http.response.body", "body": "str"}],
    [{"type": "http.response.start", "status": 200}, {"type": "http.response.body", "body": None}],
    [{"type": "http.response.start"}], [{"status": 200}], [{"type": b"http.response.start"}],
    [{"type": "websocket.accept"}], [{"type": "http.response.start", "status": 200, "headers": None}],
    [{"type": "http.response.start", "status": 200.0}],
    [{"type": "http.response.start", "status": 200, "headers": [(b"x", b"\n")]}],
]
BODIES = [(b"", 0), (b"abc", 3), (b"abcdef", 3), (b"x" * 70000, 70000), (b"ab", 5), (b"", 4)]
STATE = ("started", "finished", "gone", "request_done", "status", "headers", "head", "has_cl", "nbytes", "hsize",
         "hcount", "left", "buf")


async def drive(cls, script, body, length, peer_gone):
    """One request: the body already read and its length, the rest sent by
    the peer (or the peer gone), the body received, script sent."""
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    r = cls(loop, b.detach(), body, length, "HTTP/1.1", [0, 0, None, None])
    if peer_gone:
        a.close()
    elif length > len(body):
        a.send(b"q" * (length - len(body)))
    events = []
    for _ in range(4):
        got = outcome(r.receive)
        if got[0] == "ok":
            got = ("ok", await got[1])
        events.append(("receive", got))
        if got[0] != "ok" or not got[1].get("more_body"):
            break
    reader = None if peer_gone else loop.create_task(read_all(loop, a))
    for msg in script:
        try:
            await r.send(msg)
            events.append(("send", "ok"))
        except Exception as e:
            events.append(("send", type(e).__name__, str(e)))
    state = tuple(getattr(r, k) for k in STATE)
    r.close()
    out = b""
    if reader:
        out = await reader
        a.close()
    return events, state, out


async def read_all(loop, sock):
    out = b""
    while True:
        chunk = await loop.sock_recv(sock, 1 << 16)
        if not chunk:
            return out
        out += chunk


async def check_requests():
    n = 0
    for script in SCRIPTS:
        for body, length in BODIES:
            for peer_gone in (False, True):
                if peer_gone and script is not SCRIPTS[0]:
                    continue
                got_c = await drive(CRequest, script, body, length, peer_gone)
                got_py = await drive(PyRequest, script, body, length, peer_gone)
                assert got_c == got_py, (script[:3], body[:10], length, peer_gone, got_c[0], got_py[0], got_c[1],
                                         got_py[1], got_c[2][:200], got_py[2][:200])
                n += 1
    return n


async def check_ready():
    """Ready, in C and in Python: awaited, run as a task, thrown into."""
    loop = asyncio.get_running_loop()
    for cls in (CRequest, PyRequest):
        a, b = socket.socketpair()
        r = cls(loop, b.detach(), b"hi", 2, "HTTP/1.1", [0, 0])
        got = await loop.create_task(r.receive())  # a coroutine to create_task
        assert got == {"type": "http.request", "body": b"hi", "more_body": False}, got
        r.send({"type": "http.response.start", "status": 204})
        done = r.send({"type": "http.response.body"})
        assert type(done).__name__ == "Ready" and await done is None, done
        try:
            done.throw(KeyError("k"))
        except KeyError:
            pass
        else:
            raise AssertionError("throw did not raise")
        try:
            done.send(None)
        except StopIteration as e:
            assert e.value is None
        else:
            raise AssertionError("send did not stop")
        r.close()
        assert a.recv(100) == b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
        a.close()
    for value in (None, {"k": 1}, (1, 2), StopIteration("x")):
        for ready in (c.Ready(value), exchange.Ready(value)):
            assert await ready is value, (ready, value)
            t = loop.create_task(ready)
            assert await t is value, (ready, value)


check_scopes(3000)
heads = check_heads()
requests = asyncio.run(check_requests())
asyncio.run(check_ready())
print("ok 3000 environs, %d heads, %d requests" % (heads, requests))
