"""One ASGI HTTP request's receive and send over the uwsgi connection.

The body is read from the connection only as the app asks for it (a 100 MB
upload is never held whole); the response goes out as the app sends it.
What needs no wait (the body already read, a response the socket's buffer
takes at once: nearly every request) is Exchange's and answers with a Ready
awaitable, without a coroutine or a trip through the event loop; the C
speedups' Exchange and Ready are their twins (testdata/asgi_selftest.py
holds them to it). What must wait is HTTPRequest's, in coroutines."""

import asyncio
import os
import socket
import time
from collections.abc import Coroutine

from .asgi import BODY_CHUNK, ClientDisconnected, head_end, head_lines
from .common import SOCKET_TIMEOUT_MS, _c

TIMEOUT = SOCKET_TIMEOUT_MS / 1000.0


class Ready(object):
    """An awaitable whose result is already there. It is also a coroutine
    (send, throw, close), so an app may hand it to create_task."""
    __slots__ = ("value",)

    def __init__(self, value=None):
        self.value = value

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        raise StopIteration(self.value)

    def send(self, _):
        raise StopIteration(self.value)

    def throw(self, typ, val=None, tb=None):
        raise typ if val is None else val

    def close(self):
        pass


DONE = Ready()


class Exchange(object):
    """The request's state and the halves of receive and send that need
    no wait; the others are Waits' _receive and _write (a client gone is
    its _lost), so an Exchange is always used with Waits."""

    def __init__(self, loop, fd, body, length, proto, entry):
        self.loop, self.fd, self._sock = loop, fd, None
        self.buf = body[:length]
        self.left = length - len(self.buf)
        self.proto = proto
        self.request_done = False  # the whole body was given to the app
        self.started = self.finished = self.gone = False
        self.head, self.has_cl = b"", False
        self.status = 500
        self.headers = []
        self.nbytes = self.hsize = self.hcount = 0
        self.entry = entry  # [start, last progress, …]: the worker's harakiri reads it
        self.disconnect = None  # a task that sees the client go, once the body is read

    def receive(self):
        if self.request_done or not (self.buf or self.left == 0):
            return self._receive()
        chunk, self.buf = self.buf[:BODY_CHUNK], self.buf[BODY_CHUNK:]
        more = bool(self.buf) or self.left > 0
        self.request_done = not more
        self.entry[1] = time.monotonic_ns()
        return Ready({"type": "http.request", "body": chunk, "more_body": more})

    def send(self, msg):
        if self.gone:
            raise ClientDisconnected("the client went away")
        kind = msg["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status, headers = msg["status"], list(msg.get("headers", ()))
            # Checked now, so the mistake's traceback is the app's own line.
            self.head, self.has_cl = head_lines(self.proto, status, headers)
            self.started, self.status, self.headers = True, status, headers
            return DONE
        if kind != "http.response.body":
            raise RuntimeError("unexpected ASGI message %r in an HTTP request" % (kind,))
        if not self.started:
            raise RuntimeError("http.response.body before http.response.start")
        if self.finished:
            raise RuntimeError("http.response.body after the response ended")
        body = msg.get("body", b"")
        more = msg.get("more_body", False)
        if type(body) is not bytes:
            if not isinstance(body, (bytes, bytearray, memoryview)):
                raise TypeError("ASGI response body must be bytes, not %s" % type(body).__name__)
            body = bytes(body)
        data = body
        if self.hsize == 0:
            head, self.hcount = head_end(self.head, self.has_cl, len(self.headers), None if more else len(body))
            self.hsize = len(head)
            data = head + body
        self.finished = not more
        try:
            # Most answers fit the socket's buffer: sent at once, with no
            # timer to arm; the rest waits, at most --socket-timeout.
            n = os.write(self.fd, data) if data else 0
        except BlockingIOError:
            n = 0
        except OSError:
            self._lost()
        self.entry[1] = time.monotonic_ns()
        if n == len(data):
            self.nbytes += len(body)
            return DONE
        return self._write(data[n:], len(body))


class Waits(object):
    """The halves of receive and send that wait, on the non-blocking
    connection (a socket object is made only if one has to)."""

    @property
    def sock(self):
        if self._sock is None:
            self._sock = socket.socket(fileno=self.fd)
            self._sock.setblocking(False)
        return self._sock

    def _lost(self):
        self.gone = True
        raise ClientDisconnected("the client went away")

    def close(self):
        if self._sock is not None:
            self._sock.close()
        else:
            os.close(self.fd)

    async def _receive(self):
        if not self.request_done:
            try:
                chunk = await asyncio.wait_for(self.loop.sock_recv(self.sock, min(self.left, BODY_CHUNK)), TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                chunk = b""
            if not chunk:  # the body ended early or stalled: the client is gone
                self.gone = self.request_done = True
                return {"type": "http.disconnect"}
            self.left -= len(chunk)
            self.request_done = self.left == 0
            self.entry[1] = time.monotonic_ns()
            return {"type": "http.request", "body": chunk, "more_body": not self.request_done}
        if self.disconnect is None:
            self.disconnect = self.loop.create_task(self._wait_gone())
        await asyncio.shield(self.disconnect)
        return {"type": "http.disconnect"}

    async def _wait_gone(self):
        # nginx sends nothing after the body: readable now means closed.
        while not self.gone and not self.finished:
            try:
                data = await self.loop.sock_recv(self.sock, 1)
            except OSError:
                data = b""
            if not data:
                self.gone = True

    async def _write(self, rest, nbody):
        try:
            await asyncio.wait_for(self.loop.sock_sendall(self.sock, rest), TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            self._lost()
        self.entry[1] = time.monotonic_ns()
        self.nbytes += nbody


class HTTPRequest(Waits, Exchange if _c is None else _c.Exchange):
    """One request: Exchange's state and the halves that need no wait (in
    C when the speedups are built), Waits' halves that do."""


Coroutine.register(Ready)
if _c is not None:
    Coroutine.register(_c.Ready)
# What a receive or send that needs no wait answers with: Ready(value), the
# C one when the speedups are built.
ready = Ready if _c is None else _c.Ready
