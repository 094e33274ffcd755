"""Differential test of the worker's C speedups against their pure-Python
twins: same results on nginx's packets, on mutations of them and on random
bytes. Run by uwsgictl/daemon/speedups_test.go; argv[1] is the directory of
the built _pyvhost_speedups, argv[2] the worker program."""
import importlib.util
import json
import os
import random
import socket
import struct
import sys

os.environ["PYVHOST_WORKER"] = json.dumps({"app_id": "selftest", "script": "x", "slots": 1})
sys.path.insert(0, sys.argv[1])
import _pyvhost_speedups as c  # noqa: E402

spec = importlib.util.spec_from_file_location("worker", sys.argv[2])
w = importlib.util.module_from_spec(spec)
spec.loader.exec_module(w)


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

# send_response against send_headers' output
a, b = socket.socketpair()
for status, headers, body in [("200 OK", [("Content-Type", "text/plain")], b"hi"),
                              ("404 Not Found", [("content-length", "3"), ("X", "\xe9")], b"abc"),
                              ("204 No Content", [], b"")]:
    hsize, hcount = c.send_response(b.fileno(), "HTTP/1.1", status, headers, body)
    out = a.recv(65536)
    want = "HTTP/1.1 %s\r\n" % status + "".join("%s: %s\r\n" % kv for kv in headers)
    if not any(k.lower() == "content-length" for k, _ in headers):
        want += "Content-Length: %d\r\n" % len(body)
    want = (want + "\r\n").encode("latin-1")
    assert out == want + body, (out, want + body)
    assert hsize == len(want), (hsize, len(want))
for bad in ([("X",)], [(1, "a")], "notalist"):
    try:
        c.send_response(b.fileno(), "HTTP/1.1", "200 OK", bad, b"")
    except TypeError:
        pass
    else:
        raise AssertionError("bad headers accepted: %r" % (bad,))
# The scoreboard writers against the struct-based ones: two workers' slots
# in two mappings of one file, written the same way, must hold the same
# bytes (but for the wall-clock millisecond, which the Python twin takes
# itself).
import mmap  # noqa: E402
import tempfile  # noqa: E402

with tempfile.TemporaryFile() as f:
    size = w.APP_HEADER + 2 * w.SLOT_SIZE
    f.truncate(size)
    c.sb_map(f.fileno(), size)
    sb = mmap.mmap(f.fileno(), size)
    offs = (w.APP_HEADER, w.APP_HEADER + w.SLOT_SIZE)
    py_hist = [0] * w.HIST_BUCKETS
    for env in ({"REQUEST_METHOD": "GET", "PATH_INFO": "/x"}, {"REQUEST_METHOD": "POST", "PATH_INFO": "/\xe9" + "p" * 80},
                {"PATH_INFO": "/no-method"}, {"REQUEST_METHOD": "GET", "PATH_INFO": "/\u20ac"}, {}):
        for dur in (-1, 0, 999, 1000, 1500, 3 * 10 ** 6, 10 ** 18):
            c.sb_begin(offs[0], 4242, 77)
            w.SLOT_MARK.pack_into(sb, offs[1], 4242, w.ST_BUSY, 77)
            w.SLOT_REQ.pack_into(sb, offs[1] + w.REQ_OFF, b"")
            assert sb[offs[0]:offs[0] + 128] == sb[offs[1]:offs[1] + 128], "sb_begin"
            c.sb_request(offs[0], env)
            w.SLOT_REQ.pack_into(sb, offs[1] + w.REQ_OFF,
                                 (env.get("REQUEST_METHOD", "") + " " + env.get("PATH_INFO", "")).encode("latin-1", "replace"))
            assert sb[offs[0]:offs[0] + 128] == sb[offs[1]:offs[1] + 128], (env, sb[offs[0]:offs[0] + 128], sb[offs[1]:offs[1] + 128])
            c.sb_finish(offs[0], 4242, 5, 6, 7, 8, 9, dur)
            ms = struct.unpack_from("<Q", sb, offs[0] + 40)[0]
            w.SLOT_HEAD.pack_into(sb, offs[1], 4242, w.ST_IDLE, 0, 5, 6, 7, ms, 8, 9)
            if dur >= 0:
                b = min((dur // 1000).bit_length(), w.HIST_BUCKETS - 1)
                py_hist[b] += 1
                struct.pack_into("<I", sb, offs[1] + w.HIST_OFF + 4 * b, py_hist[b])
            assert sb[offs[0]:offs[0] + w.SLOT_SIZE] == sb[offs[1]:offs[1] + w.SLOT_SIZE], (env, dur)
    try:
        c.sb_begin(size, 1, 1)
    except ValueError:
        pass
    else:
        raise AssertionError("a slot past the scoreboard was written")
print("ok %d packets" % n)
