"""What every part of the worker shares: its configuration and the
protocol constants from the daemon, the C speedups (when built), the log
channel and the control channel to the daemon."""

import os
import sys
import time

from .tracebacks import user_traceback  # at start: a worker's files may be gone by the time one is printed

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
    """The exception being handled, its traceback starting at the user's code."""
    return format_exception(sys.exc_info()[1])


def format_exception(exc, keep_own=False):
    return user_traceback(exc, keep_own)


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
SB_CLASSES = P.get("SB_CLASSES")  # 5 u64: answers by status class, 1xx to 5xx
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


def write_log(data):
    """Write bytes (a request line) to the log as they are."""
    try:
        os.write(LOG_FD, data)
    except OSError:
        pass


def send_ctl(ev):
    try:
        os.write(CTL_FD, json_dumps(ev).encode())
    except OSError:
        pass


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
