"""An ASGI app's worker: one asyncio event loop (uvloop when the app's venv
has it) serving many connections at once, at most --asgi-concurrency;
past it the worker stops accepting, so other workers (or the queue) take
the rest. The packet is read and checked as a WSGI worker's is (Worker.
prepare); the app is called in a task per request.

In the scoreboard the worker is busy while it has requests, since the
oldest progress among them: harakiri (-t) stops a worker whose request made
no progress (read no body, sent nothing) for that long, not one serving a
long stream."""

import os
import socket as pysocket  # asyncio's sock_* want socket.socket objects
import time

from .asgi import ClientDisconnected, head_lines, scope_of
from .exchange import HTTPRequest
from .common import CFG, HANDOFF_FD, ST_BUSY, ST_IDLE, TOMASTER_FD, _c, log, signal, socket
from .conn import abort_conn, close_quietly, error_response
from .loadapp import Lifespan, LifespanFailed
from .websocket import is_upgrade
from .wsgi import Input
from .worker import Worker

STOP_GRACE = 30.0  # seconds in-flight requests get to finish once the worker stops
WS_GRACE = 2.0  # seconds open WebSockets get once the worker stops, before their 1001 close


def new_loop():
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        import asyncio
        return asyncio.new_event_loop()


class ASGIWorker(Worker):
    def __init__(self, app, slot):
        super().__init__(app, slot)
        self.wsgi_static = {}  # no WSGI keys in the environ the scope is made from
        self.concurrency = CFG.get("asgi_concurrency") or 1000
        self.max_message = CFG.get("websocket_max_message") or 16 << 20
        self.ping_every = (CFG.get("websocket_ping_ms") or 20000) / 1000.0  # < 0: off
        # The requests in hand: id(entry) -> entry, entry being [start ns,
        # last progress ns, its WebSocket or None, its task].
        self.active = {}
        self.accepting = False

    def run(self):
        import asyncio
        self.asyncio = asyncio
        self.open_scoreboard()  # counting in C when the speedups are loaded; state and latency through self.sb
        self.start_c_path()  # the C path's settings: its packets read and checked as a WSGI worker's
        self.loop = new_loop()
        if hasattr(asyncio, "eager_task_factory"):
            # Python 3.12+: a request's task runs at once, in take(); one
            # that needs no wait (most) is done before take() returns,
            # without a trip through the loop.
            self.loop.set_task_factory(asyncio.eager_task_factory)
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.main())
        finally:
            self.loop.close()

    async def main(self):
        loop = self.loop
        self.lifespan = Lifespan(self.app, log)
        try:
            await self.lifespan.startup()
        except LifespanFailed as e:
            log("app %s: lifespan startup failed:\n%s" % (CFG.get("name", self.app_id), str(e).rstrip()))
            raise
        self.stopped = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        self.own = [socket.socket(fileno=fd) for fd in CFG.get("own_fds", [])]
        self.shared = [socket.socket(fileno=fd) for fd in CFG.get("shared_fds", [])]
        for s in self.own + self.shared:
            s.setblocking(False)
        self.handoff = socket.socket(fileno=HANDOFF_FD)
        self.handoff.setblocking(False)
        self.tomaster = socket.socket(fileno=TOMASTER_FD)
        self.shared_on = False
        self.sb.mark(ST_IDLE)
        self.set_accepting(True)
        ticker = loop.create_task(self.tick())
        await self.stopped
        self.set_accepting(False)
        ticker.cancel()
        await self.drain()
        await self.lifespan.shutdown()

    async def drain(self):
        """Let in-flight requests finish; open WebSockets get WS_GRACE, then
        a 1001 close (going away)."""
        if not self.active:
            return
        _, pending = await self.asyncio.wait([e[3] for e in self.active.values()], timeout=WS_GRACE)
        for e in list(self.active.values()):
            if e[3] in pending and e[2] is not None:
                self.loop.create_task(e[2].close(1001, "the server is going away"))
        if pending:
            await self.asyncio.wait(pending, timeout=STOP_GRACE)

    def stop(self):
        self.stopping = True
        if not self.stopped.done():
            self.stopped.set_result(None)

    # -- accepting

    def set_accepting(self, on):
        """Watch the listeners (and the daemon's handoff) or stop: at the
        concurrency limit, and when stopping."""
        on = on and not self.stopping
        if on == self.accepting:
            return
        self.accepting = on
        listeners = self.own + (self.shared if self.shared_on else [])
        for s in listeners:
            if on:
                self.loop.add_reader(s.fileno(), self.on_accept, s, s in self.shared)
            else:
                self.loop.remove_reader(s.fileno())
        if on:
            self.loop.add_reader(HANDOFF_FD, self.on_handoff)
        else:
            self.loop.remove_reader(HANDOFF_FD)

    def on_accept(self, lsock, from_shared):
        fd = lsock.fileno()
        while self.accepting and len(self.active) < self.concurrency:
            try:
                if _c is not None:  # accept, read and parse in C
                    got = _c.asgi_accept(fd, from_shared)
                    if got is None:
                        return  # none waits (or another worker took it)
                    self.took(got, from_shared)
                    continue
                conn, _ = lsock._accept()
            except (BlockingIOError, InterruptedError):
                return  # another worker took it
            except OSError as e:
                log("accept: %s" % e)
                return
            os.set_blocking(conn, False)
            self.take(conn, b"", from_shared, time.monotonic_ns())

    def on_handoff(self):
        while self.accepting and len(self.active) < self.concurrency:
            got = self.recv_handoff()
            if got is None:
                return
            if _c is None:
                self.take(got[0], got[1], True, time.monotonic_ns())
                continue
            try:
                got = _c.asgi_take(got[0], got[1], True)
            except OSError as e:
                self.report("request failed", e)
                continue
            if got is not None:  # None: the client went away
                self.took(got, True)

    def took(self, got, from_shared):
        """What the C path read: a request to begin, or the bytes read of
        one that take() must go on with (env None)."""
        conn, data, start, env, nvars, pktsize = got
        if env is None:
            self.take(conn, data, from_shared, start)
        else:
            self.begin(conn, env, data, start, nvars, pktsize)

    def take(self, conn, data, from_shared, start):
        """Check a new connection's packet (at once, as a WSGI worker does)
        and begin its request."""
        try:
            got = self.prepare(conn, data, from_shared, start)
        except Exception as e:
            self.report("request failed", e)
            got = None
        if got is None:
            close_quietly(conn)
            return
        self.begin(conn, *got)

    def begin(self, conn, env, body, start, nvars, pktsize):
        """Start a request's task: http's, or websocket's for an upgrade."""
        entry = [start, start, None, None]
        self.active[id(entry)] = entry
        serve = self.websocket if "HTTP_UPGRADE" in env and is_upgrade(env) else self.http
        entry[3] = self.loop.create_task(serve(conn, entry, env, body, start, nvars, pktsize))
        if len(self.active) >= self.concurrency:
            self.set_accepting(False)

    def done(self, entry):
        """A request is over: the last step of http's or websocket's task
        (no callback to schedule)."""
        self.active.pop(id(entry), None)
        if self.max_requests and self.served() >= self.max_requests:
            self.stop()  # recycled: the zygote starts another
        elif not self.stopping and len(self.active) < self.concurrency:
            self.set_accepting(True)

    # -- one request

    async def http(self, conn, entry, env, body, start, nvars, pktsize):
        try:
            proto = env.get("SERVER_PROTOCOL") or "HTTP/1.1"
            cl = env.get("CONTENT_LENGTH")
            length = Input.length_of(cl) if cl else 0  # logs a refusal, as for WSGI
            if length < 0:
                error_response(conn, 400, proto)
                close_quietly(conn)
                return
            r = HTTPRequest(self.loop, conn, body, length, proto, entry)
            try:
                await self.app(scope_of(env, "http", self.lifespan.state), r.receive, r.send)
                if not r.started and not r.gone:
                    log("app %s returned without a response to %s %s: 500" % (
                        CFG.get("name", self.app_id), env.get("REQUEST_METHOD"), env.get("PATH_INFO")))
                    await self.error(r, 500)
                elif r.started and not r.finished and not r.gone:
                    abort_conn(conn)  # a response cut short must not look whole
                    r.status = 500
            except ClientDisconnected:
                pass
            except Exception as e:
                if r.finished:
                    self.report("raised after its response", e)  # Starlette's error page, then re-raised
                elif not r.started or r.hsize == 0:
                    self.report("raised", e)
                    await self.error(r, 500)
                else:
                    self.report("raised mid-response (the connection is aborted)", e)
                    abort_conn(conn)
                r.status = 500
            finally:
                if r.disconnect is not None:
                    r.disconnect.cancel()
                r.close()
            self.http_done(r, env, start, nvars, pktsize)
        finally:
            self.done(entry)

    def http_done(self, r, env, start, nvars, pktsize):
        """Count and log an HTTP request that was answered."""
        status = r.status if r.started else 500
        self.count(requests=1, errors=int(status >= 500), tx=r.nbytes, status=status if not r.gone else 499)
        self.sb.record(time.monotonic_ns() - start)
        if self.logging:
            self.log_request(env, status if not r.gone else 499, r.nbytes, start, nvars, pktsize, r.proto, r.hcount, r.hsize)

    async def error(self, r, code):
        r.status, r.started, r.headers = code, True, [(b"content-type", b"text/plain")]
        r.head, r.has_cl = head_lines(r.proto, code, r.headers)
        try:
            await r.send({"type": "http.response.body", "body": b"%d\n" % code})
        except ClientDisconnected:
            pass

    # -- the scoreboard, harakiri, the zygote, the shared port

    async def tick(self):
        ppid = os.getppid()
        while True:
            await self.asyncio.sleep(0.5)
            if os.getppid() != ppid:
                self.stop()  # the zygote is gone
                return
            # Harakiri counts from the oldest progress of an HTTP request;
            # an open WebSocket is activity (for --idle), never stuck.
            stuck = [e[1] for e in self.active.values() if e[2] is None]
            if stuck:
                self.sb.mark(ST_BUSY, min(stuck))
            else:
                self.sb.mark(ST_IDLE)
            if len(stuck) != len(self.active):
                self.sb.record(-1)
            want = bool(self.shared) and self.listen_shared()
            if want != self.shared_on and self.accepting:
                self.set_accepting(False)
                self.shared_on = want
                self.set_accepting(True)
            else:
                self.shared_on = want

    # -- one WebSocket

    async def websocket(self, conn, entry, env, body, start, nvars, pktsize):
        try:
            from .websocket import WebSocket, handshake_error
            why = handshake_error(env)
            if why:
                log("refused a WebSocket handshake: %s (400)" % why)
                error_response(conn, 400)
                close_quietly(conn)
                return
            sock = pysocket.socket(fileno=conn)
            sock.setblocking(False)
            ws = WebSocket(self.loop, sock, env, self.max_message, body, self.ping_every)
            entry[2] = ws
            scope = scope_of(env, "websocket", self.lifespan.state)
            scope["subprotocols"] = [p.strip() for p in env.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(",") if p.strip()]
            scope["extensions"] = {"websocket.http.response": {}}
            failed = False
            try:
                await self.app(scope, ws.receive, ws.send)
                if ws.state == "connecting":  # returned without accepting: denied
                    await ws.send({"type": "websocket.close"})
                elif ws.state == "open":
                    await ws.close(1000)
            except OSError:
                pass  # the client went away
            except Exception as e:
                failed = True
                self.report("raised in a WebSocket", e)
                if ws.state == "connecting":
                    await ws._http(500, b"500 Internal Server Error\n")
                else:
                    await ws._fail(1011, "")
            finally:
                ws.finish()
                sock.close()
            self.count(requests=1, errors=int(failed or ws.status >= 500), tx=ws.nbytes, status=500 if failed else ws.status)
            self.sb.record(time.monotonic_ns() - start)
            if self.logging:
                self.log_request(env, ws.status, ws.nbytes, start, nvars, pktsize, env.get("SERVER_PROTOCOL") or "HTTP/1.1", 0, 0)
        finally:
            self.done(entry)
