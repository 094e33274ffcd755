"""A worker: accepts connections on the app's sockets (and what the daemon
hands it), reads the uwsgi packet, answers it, and keeps its slot in the
scoreboard."""

import array
import errno
import os
import select
import sys
import time

from . import common
from .common import (ACCEPT_GRACE_NS, APP_HEADER, CFG, HANDOFF_FD, REFUSED_VARS, SLOT_SIZE, SOCKET_TIMEOUT_MS,
                     ST_IDLE, TOMASTER_FD, _c, finish_environ_c, format_exception, log, parse_vars_c, signal, socket,
                     write_log)
from .conn import ClientGone, close_quietly, error_response, wait_fd
from .scoreboard import SlotBinding
from .uwsgi import finish_environ_py, parse_vars_py
from .wsgi import EMPTY_INPUT, FileWrapper, Input, Responder, WSGICalls


class Worker(WSGICalls, SlotBinding):
    """One worker process's loop and per-request bookkeeping; WSGICalls
    calls the app, SlotBinding keeps its slot in the scoreboard."""

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
                    logging=self.logging, log_prefix=self.log_prefix.encode("latin-1", "replace"), app_num=self.app_num, log_fd=common.LOG_FD,
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
        got = self.prepare(conn, data, from_shared, start)
        if got is not None:
            self.call_app(conn, *got)

    def prepare(self, conn, data, from_shared, start):
        """Read and check the packet and make the environ: (env, the body's
        first bytes, start, the number of vars, the packet's size), or None
        when the connection was answered here (refused, a peer gone) or
        handed to the daemon (another app's, vars still on their way)."""
        end, data = self.read_packet(conn, data, start)
        if end == 0:
            return None  # the client went away mid-packet
        if end == -2:
            self.forward(conn, data, mine=True)  # a slow peer: the daemon waits for it
            return None
        if end < 0:
            log("refused a request: uwsgi vars block larger than --buffer-size %d" % self.buffer_size)
            error_response(conn, 431)
            self.count(errors=1, status=431)
            return None
        if data[0] != 0:
            log("refused a request with uwsgi modifier1 %d" % data[0])
            error_response(conn, 400)
            self.count(errors=1, status=400)
            return None
        if parse_vars_c is not None:
            env = parse_vars_c(data, end)
            pos = end if env is not None and len(env) <= self.max_vars else -1
        else:
            env, pos = parse_vars_py(data, end, self.max_vars)
        if pos != end:
            log("refused a malformed uwsgi packet")
            error_response(conn, 400)
            self.count(errors=1, status=400)
            return None
        nvars = len(env)
        self.mark_request(env)
        key = None if self.single else self.key
        if finish_environ_c is not None:
            rc = finish_environ_c(env, key, self.wsgi_static)
        else:
            rc = finish_environ_py(env, key, self.wsgi_static)
        if rc == 1:
            self.forward(conn, data)
            return None
        if rc == 2:
            names = [k for k in REFUSED_VARS if k in env]
            log("refused a request carrying %s (pyvhost never loads code from request vars)" % ", ".join(names))
            error_response(conn, 403, env.get("SERVER_PROTOCOL") or "HTTP/1.0")
            self.count(errors=1, status=403)
            return None
        if from_shared and key is not None:
            self.note_shared_traffic()
        return env, data[end:], start, nvars, end - 4

    def report(self, what, exc):
        """Log an exception with its traceback: what the app did ("raised",
        "close() raised") or "request failed". The C path calls it too."""
        tb = format_exception(exc, keep_own=what == "request failed").rstrip()
        if what == "request failed":
            log("request failed: %s" % tb)
        else:
            log("app %s %s:\n%s" % (CFG.get("name", self.app_id), what, tb))


    def log_request(self, env, status, size, start, nvars, pktsize, proto, hcount=None, hsize=None):
        ms = (time.monotonic_ns() - start) // 1000000
        prefix = self.log_prefix
        line = "%s[pid: %d|app: %d|req: %d/%d] %s () {%d vars in %d bytes} [%s] %s %s => generated %d bytes in %d msecs (%s %d) %d headers in %d bytes\n" % (
            prefix, os.getpid(), self.app_num, self.served(), self.served(), env.get("REMOTE_ADDR", ""),
            nvars * 2, pktsize, time.ctime(), env.get("REQUEST_METHOD", ""), env.get("REQUEST_URI", ""),
            size, ms, proto, status, self.resp.hcount if hcount is None else hcount, self.resp.hsize if hsize is None else hsize)
        write_log(line.encode("latin-1", "replace"))
