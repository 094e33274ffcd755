# pyvhost worker: runs one WSGI app for the pyvhost uwsgi daemon.
#
# The daemon (Go) starts this program once per app, under the app's own
# interpreter (PYHOME/bin/python) and user. This first process, the app's
# "zygote", imports the app once and forks workers from it on the daemon's
# command, so the app's memory is shared copy-on-write. Workers accept
# connections on the app's sockets themselves: the daemon stays off the
# per-request path. A request for another app (on a socket shared by every
# app) is handed to the daemon with the bytes already read, and the daemon
# hands it on to that app's workers.
#
# Standard library only; Python 3.8+. The common request is answered by the
# C speedups (csrc/speedups.c) from accept() to close() when the daemon could
# build them; this file is then the slow path (refusals, other apps'
# requests) and, without them, the whole request path: the two are kept
# identical by testdata/worker_selftest.py.

import array
import errno
import gc
import os
import select
import struct
import sys
import time

# Every app's zygote holds what this program imports, and every worker
# dirties part of it: the C modules below, not their Python wrappers
# (signal.py and socket.py import enum and more; json imports re), keep the
# zygote ~1.7 MB smaller. traceback is imported only when one is printed.
try:
    import _signal as signal
    import _socket as socket
except ImportError:  # an interpreter built without them
    import signal
    import socket


def _json_codec():
    """json.loads and a dumps for flat dicts, from the _json C module."""
    try:
        import _json
    except ImportError:
        import json
        return json.loads, json.dumps

    def no_constant(name):
        raise ValueError("unexpected %s" % name)

    class Context(object):
        strict = True
        object_hook = object_pairs_hook = None
        parse_float, parse_int, parse_constant = float, int, no_constant

    scan = _json.make_scanner(Context())
    encode_str = _json.encode_basestring_ascii

    def loads(text):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        text = text.strip()
        try:
            obj, end = scan(text, 0)
        except StopIteration:
            raise ValueError("not JSON: %r" % text[:40])
        if end != len(text):
            raise ValueError("trailing data after JSON: %r" % text[end:end + 40])
        return obj

    def encode(v):
        if v is None:
            return "null"
        if v is True or v is False:
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return encode_str(v)
        raise TypeError("cannot encode %r" % (v,))

    def dumps(d):
        return "{" + ", ".join(encode_str(k) + ": " + encode(v) for k, v in d.items()) + "}"

    return loads, dumps


json_loads, json_dumps = _json_codec()


def format_exc():
    import traceback
    return traceback.format_exc()


def format_exception(exc):
    import traceback
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


CFG = json_loads(os.environ.pop("PYVHOST_WORKER", "{}"))

# What this program shares with the daemon (descriptors, the scoreboard's
# layout, slot states, refused vars, error pages) comes from the daemon, in
# CFG["protocol"]: uwsgictl/pool/protocol.go defines it once for Go, this
# file and the C speedups.
P = CFG.get("protocol") or {}
CTL_FD = P.get("FD_CTL")              # zygote <-> daemon, private to the zygote
SCOREBOARD_FD = P.get("FD_SCOREBOARD")  # shared memory: app header + one slot per worker
HANDOFF_FD = P.get("FD_HANDOFF")      # requests the daemon routes to this app (all workers read)
TOMASTER_FD = P.get("FD_TOMASTER")    # requests for other apps, handed back to the daemon
APP_HEADER = P.get("APP_HEADER")
SLOT_SIZE = P.get("SLOT_SIZE")
# u64 fields of a slot, by byte offset (read and written through an aligned
# 'Q' view: one store each, never byte by byte)
SB_PID, SB_STATE, SB_START, SB_SEQ = P.get("SB_PID"), P.get("SB_STATE"), P.get("SB_START"), P.get("SB_SEQ")
SB_REQUESTS, SB_TOTAL, SB_ERRORS = P.get("SB_REQUESTS"), P.get("SB_TOTAL"), P.get("SB_ERRORS")
SB_LAST_MS, SB_TX, SB_FORWARDED = P.get("SB_LAST_MS"), P.get("SB_TX"), P.get("SB_FORWARDED")
HDR_LISTEN, HDR_SHARED_NS = P.get("HDR_LISTEN"), P.get("HDR_SHARED_NS")
U64_MASK = (1 << 64) - 1
REQ_OFF, REQ_LEN = P.get("REQ_OFF"), P.get("REQ_LEN")  # the request in progress: "METHOD /path", NUL-padded
HIST_OFF, HIST_BUCKETS = P.get("HIST_OFF"), P.get("HIST_BUCKETS")  # u32 buckets: i counts requests < 2**i us
ST_IDLE, ST_BUSY, ST_DONE, ST_IMPORT_FAILED = P.get("ST_IDLE"), P.get("ST_BUSY"), P.get("ST_DONE"), P.get("ST_IMPORT_FAILED")
REFUSED_VARS = tuple(P.get("REFUSED_VARS", ()))
ERROR_PAGES = {int(k): v for k, v in P.get("ERROR_PAGES", {}).items()}

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}

# Every read and write of a request waits at most this long (--socket-timeout):
# connections are non-blocking, and a peer that stops sending or reading is
# dropped instead of holding a worker.
SOCKET_TIMEOUT_MS = CFG.get("socket_timeout_ms") or 4000
# How long a worker waits for the vars of a connection it accepted before it
# hands the connection to the daemon, which waits for the rest without
# holding a worker (nginx sends them right after connecting).
ACCEPT_GRACE_NS = (CFG.get("accept_grace_ms") or 1) * 1000000
# The most of an unread request body read (and dropped) after the response,
# so that closing does not reset the connection under nginx's feet; past it
# the connection is just closed.
DRAIN_MAX = 1 << 20


def load_speedups():
    """The daemon's compiled hot path (csrc/speedups.c), when it could
    build one: the module, else None (the pure-Python twins run)."""
    d = CFG.get("speedups_dir")
    if not d:
        return None
    sys.path.insert(0, d)
    try:
        import _pyvhost_speedups
        return _pyvhost_speedups
    except ImportError as e:
        log("C speedups not loaded (%s): using the pure-Python parser" % e)
        return None
    finally:
        sys.path.remove(d)


_c = load_speedups()  # built from this worker's own csrc/ (the daemon names the dir by its hash)
parse_vars_c = getattr(_c, "parse_vars", None)
finish_environ_c = getattr(_c, "finish_environ", None)


# The worker's own channel to the daemon's log: a copy of the stderr it was
# started with, so an app that closes or redirects fd 2 cannot silence the
# worker's lines (os.dup's copy is close-on-exec).
LOG_FD = os.dup(2)


def log(msg):
    """Write one daemon-style line to the log."""
    line = "%s [pyvhost app %s pid %d] %s\n" % (time.strftime("%Y/%m/%d %H:%M:%S"), CFG.get("app_id", "?"), os.getpid(), msg)
    try:
        os.write(LOG_FD, line.encode("utf-8", "replace"))
    except OSError:
        pass


def send_ctl(ev):
    try:
        os.write(CTL_FD, json_dumps(ev).encode())
    except OSError:
        pass


# --------------------------------------------------------------------------
# Loading the app


# @LOADAPP@ (templates/loadapp.py is spliced in here: load_app_from)


def load_app():
    """Import the app exactly as the daemon's users expect uWSGI to (see
    load_app_from: module[:callable], module:factory())."""
    return load_app_from(CFG.get("chdir"), CFG["script"])


def set_limits():
    mb = CFG.get("limit_as_mb") or 0
    if mb > 0:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))


# --------------------------------------------------------------------------
# WSGI pieces


def wait_fd(fd, events, ms):
    """Wait until fd is ready for events (select.POLLIN or POLLOUT), at
    most ms; False when the time ran out. The C path's wait_fd is the same."""
    p = select.poll()
    p.register(fd, events)
    while True:
        try:
            return bool(p.poll(ms))
        except InterruptedError:
            continue


def read_some(fd, n, what):
    """os.read on a non-blocking connection, waiting at most
    --socket-timeout for data; the app sees data or a clean OSError."""
    while True:
        try:
            return os.read(fd, n)
        except BlockingIOError:
            pass  # raised below, outside this handler: no BlockingIOError in the app's traceback
        if not wait_fd(fd, select.POLLIN, SOCKET_TIMEOUT_MS):
            raise OSError(errno.ETIMEDOUT, "timed out after %g s waiting for %s" % (SOCKET_TIMEOUT_MS / 1000.0, what))


class Input(object):
    """wsgi.input: the request body, CONTENT_LENGTH bytes, streamed from the
    connection after whatever arrived together with the vars. A body that
    ends early or stalls past --socket-timeout raises OSError naming the
    bytes expected and received (as uWSGI does): never a short body passed
    off as whole."""

    __slots__ = ("fd", "buf", "left", "length")

    def __init__(self, fd, buf, length):
        self.fd = fd
        self.buf = buf[:length]
        self.length = length
        self.left = length - len(self.buf)

    @staticmethod
    def length_of(cl):
        """CONTENT_LENGTH as a number of bytes, or -1 (logged) when it is
        not one: ASCII digits only, as RFC 9110 has it and nginx sends it.
        int() alone would take "-5", " 5", "5_0" and "\u0661\u0662". Both
        request paths call it."""
        if len(cl) <= 18 and cl.isascii() and cl.isdigit():
            return int(cl)
        log("refused a request with CONTENT_LENGTH %r: not a number of bytes (400)" % (cl[:40],))
        return -1

    def _fill(self, want):
        while len(self.buf) < want and self.left > 0:
            got = self.length - self.left
            try:
                chunk = read_some(self.fd, min(max(want - len(self.buf), 65536), self.left), "the request body")
            except OSError as e:
                raise OSError(e.errno, "%s: got %d of %d bytes (CONTENT_LENGTH)" % (e.strerror or e, got, self.length)) from None
            if not chunk:
                raise OSError(errno.ECONNRESET, "the request body ended after %d of %d bytes (CONTENT_LENGTH)" % (got, self.length))
            self.left -= len(chunk)
            self.buf += chunk

    def read(self, size=-1):
        if size is None or size < 0:
            self._fill(float("inf"))
            data, self.buf = self.buf, b""
            return data
        self._fill(size)
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def readline(self, size=-1):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0 or self.left == 0 or (size is not None and 0 <= size <= len(self.buf)):
                break
            self._fill(len(self.buf) + 65536)
        end = i + 1 if i >= 0 else len(self.buf)
        if size is not None and 0 <= size < end:
            end = size
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self):
        """Read and drop what the app left unread, up to DRAIN_MAX, so
        closing the connection does not reset it under nginx's feet; True
        when the whole body was read."""
        self.buf = b""
        budget = DRAIN_MAX
        while self.left > 0 and budget > 0:
            chunk = read_some(self.fd, min(self.left, budget, 1 << 16), "the request body")
            if not chunk:
                return False
            self.left -= len(chunk)
            budget -= len(chunk)
        return self.left == 0


class FileWrapper(object):
    """wsgi.file_wrapper: iterates a file in blocks; a real file with a
    fileno is sent with os.sendfile instead."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class EmptyInput(object):
    """wsgi.input of a request without a body; it holds no state, so one
    instance serves every such request."""

    def read(self, size=-1):
        return b""

    def readline(self, size=-1):
        return b""

    def readlines(self, hint=-1):
        return []

    def __iter__(self):
        return iter(())


EMPTY_INPUT = EmptyInput()


class ClientGone(Exception):
    pass


class Response(object):
    """The response being written, one per worker and reset per request, so
    start_response and write are made once, not per request. The C
    speedups' Responder is the same in C (and used when loaded)."""

    __slots__ = ("conn", "proto", "status", "headers", "sent", "nbytes", "hsize", "hcount")

    def begin(self, conn, proto):
        self.conn = conn
        self.proto = proto
        self.status = self.headers = None
        self.sent = False
        self.nbytes = self.hsize = self.hcount = 0

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        self.status, self.headers = status, headers
        return self.write

    def write(self, data):
        if not isinstance(data, bytes):
            raise TypeError("response data must be bytes")
        if not self.sent:
            self.send_headers(data, None)
        elif data:
            write_all(self.conn, data)
        self.nbytes += len(data)

    def send_headers(self, first_chunk, content_length):
        status, headers = self.status, self.headers
        if status is None:
            raise AssertionError("the app did not call start_response")
        if not isinstance(first_chunk, bytes):
            raise TypeError("response data must be bytes")
        if isinstance(status, str) and bad_text(status):
            raise ValueError("response status %r has CR, LF or NUL" % (status,))
        lines = [self.proto, " ", status, "\r\n"]
        has_cl = False
        for k, v in headers:
            if not has_cl and k.lower() == "content-length":
                has_cl = True
            check_header(k, v)
            lines += (k, ": ", v, "\r\n")
        if not has_cl and content_length is not None:
            lines += ("Content-Length: ", str(content_length), "\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        self.sent = True
        self.hsize = len(head)
        self.hcount = len(headers) + (0 if has_cl or content_length is None else 1)
        write_all(self.conn, head + first_chunk if first_chunk else head)


# What an app may put in its status and headers, checked as gunicorn does
# before a byte is sent (the app gets a 500 and the log its mistake); the C
# speedups' check_header is the same.
TOKEN_CHARS = str.maketrans("", "", "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                        "transfer-encoding", "upgrade"))


def bad_text(text):
    return "\r" in text or "\n" in text or "\0" in text


def check_header(name, value):
    """A header name is an RFC 9110 token, its value holds no CR, LF or NUL
    (they would split the response), and hop-by-hop headers are the
    server's (PEP 3333)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("status and headers must be str")
    if not name or name.translate(TOKEN_CHARS):
        raise ValueError("response header name %r is not an RFC 9110 token" % (name,))
    if bad_text(value):
        raise ValueError("response header %r has CR, LF or NUL in its value" % (name,))
    if name.lower() in HOP_BY_HOP:
        raise ValueError("response header %r is hop-by-hop: PEP 3333 leaves it to the server" % (name,))


# The response object the worker uses: the C one when the speedups are loaded.
Responder = _c.Responder if _c is not None else Response


def close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def abort_conn(conn):
    """Make close() reset the connection (TCP), so a response cut short
    shows as an error to nginx and the client, not as a short body."""
    s = socket.socket(fileno=conn)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    finally:
        s.detach()


def write_all(fd, data):
    """Write all of data, waiting at most --socket-timeout whenever the
    peer's window is full: a peer that stops reading is a client gone."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            if not wait_fd(fd, select.POLLOUT, SOCKET_TIMEOUT_MS):
                raise ClientGone()
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise ClientGone()
        view = view[n:]


def error_response(fd, code, proto="HTTP/1.1"):
    reason = ERROR_PAGES[code]
    body = ("%d %s\n" % (code, reason)).encode()
    head = "%s %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
        proto, code, reason, len(body))
    try:
        write_all(fd, head.encode("latin-1") + body)
    except (ClientGone, OSError):
        pass


# --------------------------------------------------------------------------
# The scoreboard


class Slot(object):
    """A worker's slot in the app's scoreboard (shared memory the daemon
    reads; layout in CFG["protocol"]). Every field is written in place with
    one aligned store through a 'Q' or 'I' view, never byte by byte (a torn
    start time would get a healthy worker killed for harakiri), and state,
    start and request name change between two steps of the slot's sequence
    counter (odd while they change). The C speedups' sb_* are the same in C."""

    def __init__(self, slot, mem=None):
        self.size = APP_HEADER + SLOT_SIZE * CFG["slots"]
        if mem is None:
            import mmap
            mem = mmap.mmap(SCOREBOARD_FD, self.size)
        self.mem = mem
        self.q = memoryview(self.mem).cast("Q")
        self.i = memoryview(self.mem).cast("I")
        self.off = APP_HEADER + slot * SLOT_SIZE
        self.pid = os.getpid()
        q = self.off // 8
        self.seq, self.start, self.last_ms, self.total = q + SB_SEQ // 8, q + SB_START // 8, q + SB_LAST_MS // 8, q + SB_TOTAL // 8
        self.req = self.off + REQ_OFF

    def mark(self, state, start_ns=0, name=None):
        """Set state, start (and the request's name) as one change."""
        q, i = self.q, self.i
        q[self.seq] += 1
        i[(self.off + SB_PID) // 4] = self.pid
        i[(self.off + SB_STATE) // 4] = state
        q[self.start] = start_ns
        if name is not None:
            self.mem[self.req:self.req + REQ_LEN] = name[:REQ_LEN].ljust(REQ_LEN, b"\0")
        q[self.seq] += 1

    def begin(self, start_ns):
        self.mark(ST_BUSY, start_ns, b"")  # named once the vars are read

    def request(self, env):
        # What the worker is busy with, for ctl and the status page: method
        # and path only (a query string can carry secrets).
        name = (env.get("REQUEST_METHOD", "") + " " + env.get("PATH_INFO", "")).encode("latin-1", "replace")
        q = self.q
        q[self.seq] += 1
        self.mem[self.req:self.req + REQ_LEN] = name[:REQ_LEN].ljust(REQ_LEN, b"\0")
        q[self.seq] += 1

    def count(self, requests=0, errors=0, tx=0, forwarded=0):
        """Add to the worker's counters."""
        q, base = self.q, self.off // 8
        for off, n in ((SB_REQUESTS, requests), (SB_ERRORS, errors), (SB_TX, tx), (SB_FORWARDED, forwarded)):
            if n:
                q[base + off // 8] = (q[base + off // 8] + n) & U64_MASK

    def served(self):
        """The requests this worker has answered."""
        return self.q[(self.off + SB_REQUESTS) // 8]

    def finish(self, dur_ns):
        """The worker is idle again; dur_ns < 0: no latency to count."""
        self.mark(ST_IDLE)
        q = self.q
        q[self.last_ms] = int(time.time() * 1000)
        if dur_ns < 0:
            return
        q[self.total] = (q[self.total] + dur_ns) & U64_MASK
        b = min((dur_ns // 1000).bit_length(), HIST_BUCKETS - 1)
        at = (self.off + HIST_OFF) // 4 + b
        self.i[at] = (self.i[at] + 1) & 0xFFFFFFFF


# --------------------------------------------------------------------------
# The worker


class Worker(object):
    def __init__(self, app, slot):
        self.app = app
        self.slot = slot
        self.app_id = CFG["app_id"]
        self.app_num = CFG.get("app_num", 0)
        self.single = CFG.get("single_app", False)
        self.key = (CFG.get("pyhome", ""), CFG.get("chdir", ""), CFG["script"])
        self.buffer_size = CFG.get("buffer_size", 4096)
        # Most packets fit the first read; a small read avoids allocating
        # (and shrinking) a large buffer on every request.
        self.first_read = self.buffer_size + 4 + 1024
        self.max_vars = CFG.get("max_vars", 128)
        self.max_requests = CFG.get("max_requests", 0)
        self.logging = CFG.get("logging", True)
        self.vhost = CFG.get("vhost", False)
        # A vhost's request lines start with the app's name (its server_name
        # and mount), never the request's Host: a request nginx's default
        # server passed on is logged as the app that served it.
        self.log_prefix = (CFG.get("name") or CFG.get("app_id", "")) + " " if self.vhost else ""
        # The counters (requests, errors, bytes sent, requests handed to
        # the daemon for another app, latency) live in the scoreboard slot
        # only: the C path and this code both add to them there.
        self.in_request = False
        self.stopping = False
        self.sb = None
        self.slot_off = APP_HEADER + slot * SLOT_SIZE
        self.ppid = os.getppid()
        self.pid = os.getpid()
        self.resp = Responder()
        self.start_response = self.resp.start_response  # bound once
        # The environ keys that are the same on every request.
        self.wsgi_static = {
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
        }

    # -- scoreboard: in C when the speedups are loaded (open_scoreboard
    # picks), else through Slot

    def open_scoreboard(self, mem=None, use_c=True):
        """Map the slot (mem: a scoreboard already mapped, for the selftest)."""
        self.sb = Slot(self.slot, mem)
        if _c is not None and use_c:
            if mem is None:
                _c.sb_map(SCOREBOARD_FD, self.sb.size)
            self.mark_busy = self.mark_busy_c
            self.mark_request = self.mark_request_c
            self.count = self.count_c
            self.served = self.served_c
            self.finish_stats = self.finish_stats_c
        else:
            self.mark_busy = self.sb.begin
            self.mark_request = self.sb.request
            self.count = self.sb.count
            self.served = self.sb.served
            self.finish_stats = self.sb.finish

    def mark_busy_c(self, start_ns):
        _c.sb_begin(self.slot_off, self.pid, start_ns)

    def mark_request_c(self, env):
        _c.sb_request(self.slot_off, env)

    def count_c(self, requests=0, errors=0, tx=0, forwarded=0):
        _c.sb_count(self.slot_off, requests, errors, tx, forwarded)

    def served_c(self):
        return _c.sb_served(self.slot_off)

    def finish_stats_c(self, dur_ns):
        _c.sb_finish(self.slot_off, self.pid, dur_ns)

    def listen_shared(self):
        return self.sb.i[HDR_LISTEN // 4] != 0

    def note_shared_traffic(self):
        self.sb.q[HDR_SHARED_NS // 8] = time.monotonic_ns()

    # -- signals

    def on_stop(self, signum, frame):
        self.stopping = True
        if _c is not None:
            _c.request_stop()
        if not self.in_request:
            raise SystemExit(0)

    # -- main loop

    def start_c_path(self):
        """Hand the app and the Python helpers the C path calls back to the
        speedups (when loaded): from now on they answer the common request."""
        if _c is None:
            return
        _c.hot_init(app=self.app, key=None if self.single else self.key, static=self.wsgi_static,
                    responder=self.resp, empty_input=EMPTY_INPUT, input_cls=Input, file_wrapper=FileWrapper,
                    client_gone=ClientGone, report=self.report, error_page=error_response,
                    send_file=self.send_file, buffer_size=self.buffer_size, max_vars=self.max_vars,
                    slot_off=self.slot_off, pid=self.pid, max_requests=self.max_requests,
                    logging=self.logging, log_prefix=self.log_prefix.encode("latin-1", "replace"), app_num=self.app_num, log_fd=LOG_FD,
                    timeout_ms=SOCKET_TIMEOUT_MS, grace_ms=ACCEPT_GRACE_NS // 1000000)

    def run(self):
        self.open_scoreboard()
        self.start_c_path()
        signal.signal(signal.SIGTERM, self.on_stop)
        signal.signal(signal.SIGHUP, self.on_stop)
        signal.signal(signal.SIGINT, self.on_stop)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        own = [socket.socket(fileno=fd) for fd in CFG.get("own_fds", [])]
        shared = [socket.socket(fileno=fd) for fd in CFG.get("shared_fds", [])]
        # Several workers wait on the same sockets: a wake-up may find the
        # connection already taken, so accepting must not block.
        for s in own + shared:
            s.setblocking(False)
        self.handoff = socket.socket(fileno=HANDOFF_FD)
        self.handoff.setblocking(False)
        self.tomaster = socket.socket(fileno=TOMASTER_FD)
        listeners = {}
        ep = select.epoll()
        excl = getattr(select, "EPOLLEXCLUSIVE", 0)
        for s in own:
            ep.register(s.fileno(), select.EPOLLIN | excl)
            listeners[s.fileno()] = (s, False)
        for s in shared:
            listeners[s.fileno()] = (s, True)
        ep.register(HANDOFF_FD, select.EPOLLIN | excl)
        shared_on = False
        self.sb.mark(ST_IDLE)
        handle = self.handle
        while not self.stopping:
            want_shared = bool(shared) and self.listen_shared()
            if want_shared != shared_on:
                for s in shared:
                    if want_shared:
                        ep.register(s.fileno(), select.EPOLLIN | excl)
                    else:
                        ep.unregister(s.fileno())
                shared_on = want_shared
            try:
                events = ep.poll(1.0)
            except InterruptedError:
                continue
            if not events and os.getppid() != self.ppid:
                return  # the zygote is gone
            # From here until the events are handled a stop signal only
            # marks the worker as stopping: exiting between accept() and
            # the response would drop a connection already taken.
            self.in_request = True
            for fd, ev in events:
                if fd == HANDOFF_FD:
                    if ev & (select.EPOLLHUP | select.EPOLLERR):
                        # The daemon's end is closed: the daemon is gone.
                        # (Reading on would find nothing, forever.)
                        self.stopping = True
                        break
                    got = self.recv_handoff()
                    if got is None:
                        continue
                    conn, prefix = got
                    if _c is not None:
                        slow = _c.serve(conn, prefix, True)
                        if slow is not None:
                            handle(conn, slow[0], True, slow[1])
                    else:
                        handle(conn, prefix, True)
                    continue
                lsock, from_shared = listeners[fd]
                try:
                    if _c is not None:
                        # Accept and answer in C until no connection waits
                        # (a batch at a time, so the handoff socket gets its turn).
                        while not self.stopping:
                            slow = _c.accept_serve(fd, from_shared, 64)
                            if slow is None:
                                break
                            handle(slow[0], slow[1], from_shared, slow[2])
                        continue
                    conn, _ = lsock._accept()
                    os.set_blocking(conn, False)  # reads and writes wait with a deadline
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        time.sleep(0.01)
                        continue
                    raise
                handle(conn, b"", from_shared)
            self.in_request = False
            if self.stopping or (self.max_requests and self.served() >= self.max_requests):
                return

    def recv_handoff(self):
        try:
            # close-on-exec at once: a process the app starts must not hold
            # a client's connection open
            data, anc, _, _ = self.handoff.recvmsg(65536 + 8192, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return None
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % 4])
                for extra in fds[1:]:
                    os.close(extra)
                os.set_blocking(fds[0], False)  # reads and writes wait with a deadline
                return fds[0], data
        return None

    def forward(self, conn, data, mine=False):
        """Hand a connection to the daemon with what was read of it: a
        request for another app, or (mine) one whose vars are still on
        their way."""
        if not mine:
            self.count(forwarded=1)
        try:
            self.tomaster.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [conn]))])
        except OSError as e:
            log("cannot hand a request to the daemon: %s" % e)
            error_response(conn, 500)
        # handle() closes conn: our copy, the daemon has its own

    def handle(self, conn, data, from_shared, start=None):
        """Answer a connection; data is what was read of it already. The C
        path calls this, with the time it began, for what it leaves."""
        if start is None:
            start = time.monotonic_ns()
            self.mark_busy(start)
        served = self.served()
        try:
            self.serve(conn, data, from_shared, start)
        except Exception as e:
            self.report("request failed", e)
        except BaseException:
            # The app's sys.exit() (or the like) ends the worker in this
            # request: its slot stays busy with it, for the daemon's log.
            close_quietly(conn)
            raise
        close_quietly(conn)
        # Latency counts only requests this worker answered, not those it
        # handed to the daemon for another app.
        self.finish_stats(time.monotonic_ns() - start if self.served() != served else -1)

    def read_packet(self, conn, data, start):
        """Read the header and vars. Returns (end of vars, data); end is 0
        when the peer went away mid-packet, -1 when the vars block is
        larger than --buffer-size, and -2 when they did not arrive within
        ACCEPT_GRACE_NS of start (the daemon waits for the rest)."""
        need = 4
        while True:
            if need == 4 and len(data) >= 4:
                size = data[1] | (data[2] << 8)
                if size > self.buffer_size:
                    return -1, data
                need = 4 + size
            if len(data) >= need:
                return need, data
            try:
                chunk = os.read(conn, max(self.first_read, need - len(data)))
            except BlockingIOError:
                left = start + ACCEPT_GRACE_NS - time.monotonic_ns()
                if left > 0 and wait_fd(conn, select.POLLIN, left // 1000000 + 1):
                    continue
                return -2, data
            if not chunk:
                return 0, data
            data += chunk

    def serve(self, conn, data, from_shared, start):
        end, data = self.read_packet(conn, data, start)
        if end == 0:
            return  # the client went away mid-packet
        if end == -2:
            self.forward(conn, data, mine=True)  # a slow peer: the daemon waits for it
            return
        if end < 0:
            log("refused a request: uwsgi vars block larger than --buffer-size %d" % self.buffer_size)
            error_response(conn, 431)
            self.count(errors=1)
            return
        if data[0] != 0:
            log("refused a request with uwsgi modifier1 %d" % data[0])
            error_response(conn, 400)
            self.count(errors=1)
            return
        if parse_vars_c is not None:
            env = parse_vars_c(data, end)
            pos = end if env is not None and len(env) <= self.max_vars else -1
        else:
            env, pos = parse_vars_py(data, end, self.max_vars)
        if pos != end:
            log("refused a malformed uwsgi packet")
            error_response(conn, 400)
            self.count(errors=1)
            return
        nvars = len(env)
        self.mark_request(env)
        key = None if self.single else self.key
        if finish_environ_c is not None:
            rc = finish_environ_c(env, key, self.wsgi_static)
        else:
            rc = finish_environ_py(env, key, self.wsgi_static)
        if rc == 1:
            self.forward(conn, data)
            return
        if rc == 2:
            names = [k for k in REFUSED_VARS if k in env]
            log("refused a request carrying %s (pyvhost never loads code from request vars)" % ", ".join(names))
            error_response(conn, 403, env.get("SERVER_PROTOCOL") or "HTTP/1.0")
            self.count(errors=1)
            return
        if from_shared and key is not None:
            self.note_shared_traffic()
        self.call_app(conn, env, data[end:], start, nvars, end - 4)

    def call_app(self, conn, env, body_prefix, start, nvars, pktsize):
        proto = env.get("SERVER_PROTOCOL") or "HTTP/1.0"
        r = self.resp
        r.begin(conn, proto)
        cl = env.get("CONTENT_LENGTH")
        if cl and cl != "0":
            length = Input.length_of(cl)
            if length < 0:
                error_response(conn, 400, proto)
                self.count(requests=1, errors=0, tx=0)
                if self.logging:
                    self.log_request(env, 400, 0, start, nvars, pktsize, proto)
                return
            inp = env["wsgi.input"] = Input(conn, body_prefix, length)
        else:
            inp = env["wsgi.input"] = EMPTY_INPUT  # stateless: shared by bodiless requests
        status_code = 500
        result = None
        try:
            result = self.app(env, self.start_response)
            if type(result) in (list, tuple) and not r.sent:
                body = result[0] if len(result) == 1 else b"".join(result)
                r.send_headers(body, len(body))
                r.nbytes += len(body)
            elif isinstance(result, FileWrapper) and hasattr(result.filelike, "fileno") and not r.sent:
                self.send_file(conn, result, r)
            else:
                write = r.write
                for chunk in result:
                    if chunk:
                        write(chunk)
                if not r.sent:
                    r.send_headers(b"", 0)
            status_code = int(r.status[:3])
        except ClientGone:
            status_code = int(r.status[:3]) if r.status else 499
        except Exception as e:
            if not r.sent:
                self.report("raised", e)
                error_response(conn, 500, proto)
            else:
                # Too late for a 500: the client must see the response cut,
                # not a short body that looks whole.
                self.report("raised mid-response (the connection is aborted)", e)
                abort_conn(conn)
                inp = EMPTY_INPUT  # nothing more to read
            status_code = 500
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception as e:
                    self.report("close() raised", e)
        if inp is not EMPTY_INPUT:
            try:
                inp.drain()
            except OSError:
                pass
        self.count(requests=1, errors=int(status_code >= 500), tx=r.nbytes)
        if self.logging:
            self.log_request(env, status_code, r.nbytes, start, nvars, pktsize, proto)

    def report(self, what, exc):
        """Log an exception with its traceback: what the app did ("raised",
        "close() raised") or "request failed". The C path calls it too."""
        tb = format_exception(exc).rstrip()
        if what == "request failed":
            log("request failed: %s" % tb)
        else:
            log("app %s %s:\n%s" % (CFG.get("name", self.app_id), what, tb))

    def send_file(self, conn, wrapper, r):
        f = wrapper.filelike
        fileno = f.fileno()
        try:
            offset = f.tell()
        except (OSError, AttributeError):
            offset = 0
        size = os.fstat(fileno).st_size - offset
        r.send_headers(b"", size)
        while size > 0:
            try:
                n = os.sendfile(conn, fileno, offset, min(size, 1 << 30))
            except BlockingIOError:
                if not wait_fd(conn, select.POLLOUT, SOCKET_TIMEOUT_MS):
                    raise ClientGone()
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise ClientGone()
            if n == 0:
                break
            offset += n
            size -= n
            r.nbytes += n

    def log_request(self, env, status, size, start, nvars, pktsize, proto):
        ms = (time.monotonic_ns() - start) // 1000000
        prefix = self.log_prefix
        line = "%s[pid: %d|app: %d|req: %d/%d] %s () {%d vars in %d bytes} [%s] %s %s => generated %d bytes in %d msecs (%s %d) %d headers in %d bytes\n" % (
            prefix, os.getpid(), self.app_num, self.served(), self.served(), env.get("REMOTE_ADDR", ""),
            nvars * 2, pktsize, time.ctime(), env.get("REQUEST_METHOD", ""), env.get("REQUEST_URI", ""),
            size, ms, proto, status, self.resp.hcount, self.resp.hsize)
        try:
            os.write(LOG_FD, line.encode("latin-1", "replace"))
        except OSError:
            pass


def parse_vars_py(b, end, max_vars):
    """Parse the vars block; returns (environ, end), or (None, -1) when it
    is malformed. Lengths come from the bytes, strings are sliced from one
    latin-1 decoding of the same bytes (PEP 3333's "bytes as latin-1"), so
    offsets agree. csrc/environ.c does the same in C."""
    s = b[:end].decode("latin-1")
    env = {}
    pos = 4
    try:
        while pos < end:
            q = pos + 2 + (b[pos] | b[pos + 1] << 8)
            r = q + 2 + (b[q] | b[q + 1] << 8)
            env[s[pos + 2:q]] = s[q + 2:r]
            pos = r
    except IndexError:
        return None, -1
    if pos != end or len(env) > max_vars or "" in env:
        return None, -1
    return env, end


def finish_environ_py(env, key, static):
    """Prepare a parsed environ for the app; csrc/environ.c's finish_environ
    does the same in C. Returns 1 when the request names another app than
    key, 2 when it carries a var that loads code or files, else 0."""
    if key is not None:
        pyhome = env.get("UWSGI_PYHOME") or env.get("UWSGI_HOME", "")
        script = env.get("UWSGI_SCRIPT")
        if script is None:
            script = env.get("UWSGI_MODULE", "")
            if script and env.get("UWSGI_CALLABLE"):
                script += ":" + env["UWSGI_CALLABLE"]
        if (pyhome, env.get("UWSGI_CHDIR", ""), script) != key:
            return 1
    for k in REFUSED_VARS:
        if k in env:
            return 2
    # nginx also passes Content-Length and Content-Type as headers; CGI
    # and PEP 3333 have them only as CONTENT_LENGTH and CONTENT_TYPE.
    env.pop("HTTP_CONTENT_LENGTH", None)
    env.pop("HTTP_CONTENT_TYPE", None)
    sn = env.get("SCRIPT_NAME", "")
    pi = env.setdefault("PATH_INFO", "")
    if sn:
        sn = sn.rstrip("/")
        env["SCRIPT_NAME"] = sn
        if pi == sn or pi.startswith(sn + "/"):
            env["PATH_INFO"] = pi[len(sn):]
    else:
        env["SCRIPT_NAME"] = ""
    if env.get("HTTPS", "").lower() in ("on", "1", "true"):
        env["wsgi.url_scheme"] = "https"
    else:
        env["wsgi.url_scheme"] = env.get("UWSGI_SCHEME") or env.get("REQUEST_SCHEME") or "http"
    env.update(static)
    return 0


_prctl = None


def prepare_fork():
    """Import, in the zygote, what every worker needs right after fork
    (mmap for the scoreboard; ctypes for prctl when the C speedups, which
    have their own, are not loaded): imported before fork, their pages stay
    shared; imported after, every worker pays ~0.3 MB for them."""
    global _prctl
    import mmap  # noqa: F401 (open_scoreboard's)
    if _c is not None:
        return
    try:
        import ctypes
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except Exception:
        _prctl = None


def die_with_parent():
    """Ask the kernel to kill this worker if its zygote dies."""
    PR_SET_PDEATHSIG = 1
    if _c is not None:
        _c.die_with_parent()
    elif _prctl is not None:
        try:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass  # the worker loop also notices a changed parent pid


# --------------------------------------------------------------------------
# The zygote


def keep_descriptors_private():
    """The descriptors this program holds for the daemon are close-on-exec
    (the daemon hands them over inheritable): a process the app starts
    (os.system, subprocess) must not keep the daemon's sockets, its
    scoreboard or its control channel after the worker is gone. fork() still
    gives them to the workers."""
    for fd in [CTL_FD, SCOREBOARD_FD, HANDOFF_FD, TOMASTER_FD] + CFG.get("own_fds", []) + CFG.get("shared_fds", []):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass


def zygote():
    keep_descriptors_private()
    set_limits()
    lazy = CFG.get("lazy", False)
    app = None
    if not lazy:
        try:
            app = load_app()
        except BaseException:
            tb = format_exc()
            send_ctl({"ev": "failed", "error": tb.rstrip().splitlines()[-1], "traceback": tb})
            os._exit(1)
    elif CFG.get("chdir"):
        os.chdir(CFG["chdir"])
    prepare_fork()
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()  # keep the imported objects' pages shared with the workers
    send_ctl({"ev": "ready", "pid": os.getpid()})
    children = {}
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda s, f: None)
    stopping = [False]

    def stop(signum=None, frame=None):
        stopping[0] = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    me = os.getpid()
    while True:
        reap(children)
        if stopping[0] and not children:
            os._exit(0)
        try:
            ready, _, _ = select.select([CTL_FD, wake_r], [], [], 1.0)
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        if CTL_FD in ready:
            try:
                msg = os.read(CTL_FD, 65536)
            except OSError:
                msg = b""
            if not msg:
                stop()  # the daemon is gone
                continue
            cmd = json_loads(msg)
            if cmd.get("cmd") == "spawn" and not stopping[0]:
                slot = cmd["slot"]
                # No stop signal may fall between fork() and the child's own
                # handlers (it would run the zygote's, and the worker would
                # never stop), nor between fork() and recording the child.
                old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                pid = os.fork()
                if pid == 0:
                    run_worker(app, slot, me, old_mask, wake_r, wake_w)
                children[pid] = slot
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                send_ctl({"ev": "spawned", "slot": slot, "pid": pid})
            elif cmd.get("cmd") == "stop":
                stop()


def reap(children):
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        slot = children.pop(pid, -1)
        send_ctl({"ev": "exited", "slot": slot, "pid": pid, "status": status})


def run_worker(app, slot, zygote_pid, old_mask, wake_r, wake_w):
    """A new worker, right after fork(); never returns. Its last word in
    its slot tells the daemon why it exits: ST_DONE (recycled, asked to
    stop, its zygote gone), ST_IMPORT_FAILED (--lazy-apps); any other exit,
    whatever its status, is a crash the daemon logs."""
    # First of all: die with the zygote. A zygote killed before this line
    # ran leaves the worker another parent, and the worker ends here.
    die_with_parent()
    if os.getppid() != zygote_pid:
        os._exit(1)
    code = 0
    worker = None
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)  # until the worker sets its own
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.set_wakeup_fd(-1)
        os.close(wake_r)
        os.close(wake_w)
        os.close(CTL_FD)
        if app is None:
            try:
                app = load_app()
            except BaseException:
                log("app %s failed to import:\n%s" % (CFG.get("name", CFG.get("app_id")), format_exc().rstrip()))
                Slot(slot).mark(ST_IMPORT_FAILED)
                os._exit(1)
        worker = Worker(app, slot)
        worker.run()
    except SystemExit as e:
        if worker is None or not worker.stopping:
            # The app's own sys.exit() in a request: its status is the app's.
            code = e.code if isinstance(e.code, int) else 1
            log("the app called sys.exit(%r) during a request: the worker exits" % (e.code,))
            os._exit(code)
    except BaseException:
        log("worker crashed:\n%s" % format_exc().rstrip())
        os._exit(1)
    worker.sb.mark(ST_DONE)
    os._exit(0)


if __name__ == "__main__":
    zygote()
