"""WebSockets (RFC 6455) for ASGI apps, over the uwsgi connection nginx
turns into a tunnel once the app answers 101: the handshake and the
websocket scope's receive and send (the frame codec is wsframes.py).
Standard library only."""

import asyncio
import base64
import collections
import hashlib

from .asgi import response_head
from .exchange import ready
from .wsframes import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ProtocolError, Reader, close_payload, frame, parse_close

DONE = ready()
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_TIMEOUT = 5.0  # how long the close handshake waits for the peer's close
INBOX = 16  # messages read ahead of the app


def _seen(task):
    if not task.cancelled():
        task.exception()


def is_upgrade(env):
    return env.get("HTTP_UPGRADE", "").lower() == "websocket" and \
        "upgrade" in [t.strip() for t in env.get("HTTP_CONNECTION", "").lower().split(",")]


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode("latin-1") + GUID).digest()).decode()


def handshake_error(env):
    """Why the client's handshake cannot be accepted ("" when it can)."""
    if env.get("HTTP_SEC_WEBSOCKET_VERSION") != "13":
        return "Sec-WebSocket-Version %r, want 13" % env.get("HTTP_SEC_WEBSOCKET_VERSION")
    try:
        if len(base64.b64decode(env.get("HTTP_SEC_WEBSOCKET_KEY", ""), validate=True)) != 16:
            raise ValueError
    except ValueError:
        return "Sec-WebSocket-Key is not 16 bytes in base64"
    return ""


class WebSocket(object):
    """The websocket scope's receive and send over one connection."""

    def __init__(self, loop, sock, env, max_message, body=b"", ping_every=0):
        self.loop, self.sock, self.env = loop, sock, env
        self.ping_every = ping_every
        self.pinging = None
        # What the socket did not take yet, in order, and the task writing
        # it: every frame goes after them, whoever sends, so frames never
        # interleave on the wire.
        self.out = collections.deque()
        self.flushing = None
        self.reader = Reader(loop, sock, max_message, body)
        self.state = "connecting"  # connecting → open → closing → closed
        self.connect_sent = False
        self.close_code = None
        self.status = 101
        self.http_started = False
        self.nbytes = 0
        # Messages read and not yet received by the app: at most INBOX (the
        # reader then waits: a slow app slows its client, not our memory).
        self.inbox = collections.deque()
        self.wake_app = self.wake_reader = None
        self.reading = None
        self.peer_closed = loop.create_future()

    def receive(self):
        """A message read ahead at once (a Ready), else a coroutine."""
        if self.inbox and self.connect_sent:
            return ready(self._take())
        return self._receive()

    async def _receive(self):
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while not self.inbox:
            if self.state == "closed":
                return {"type": "websocket.disconnect", "code": self.close_code or 1006}
            self.wake_app = self.loop.create_future()
            await self.wake_app
        return self._take()

    def _take(self):
        msg = self.inbox.popleft()
        w = self.wake_reader
        if w is not None and not w.done():
            w.set_result(None)
        return msg

    def _deliver(self, msg):
        self.inbox.append(msg)
        w = self.wake_app
        if w is not None and not w.done():
            w.set_result(None)

    def send(self, msg):
        """A message sent: the socket took it (DONE), or an awaitable that
        is done once it has; the handshake and the close are coroutines."""
        kind = msg["type"]
        if self.state == "connecting" or kind != "websocket.send":
            return self._send(kind, msg)
        if self.state != "open":
            raise OSError("the WebSocket is closed")  # spec 2.4: sending after close raises
        if msg.get("bytes") is not None:
            data = frame(OP_BINARY, msg["bytes"])
        elif msg.get("text") is not None:
            data = frame(OP_TEXT, msg["text"].encode("utf-8"))
        else:
            raise ValueError("websocket.send without bytes or text")
        waiting = self.queue(data)
        return DONE if waiting is None else asyncio.shield(waiting)

    async def _send(self, kind, msg):
        if self.state == "connecting":
            await self._send_handshake(kind, msg)
            return
        if kind.startswith("websocket.http.response"):
            raise RuntimeError("%s after the WebSocket was accepted" % kind)
        if self.state != "open":
            raise OSError("the WebSocket is closed")  # spec 2.4: sending after close raises
        if kind == "websocket.close":
            await self.close(msg.get("code") or 1000, msg.get("reason") or "")
        else:
            raise RuntimeError("unexpected ASGI message %r in a WebSocket" % (kind,))

    async def _send_handshake(self, kind, msg):
        if kind == "websocket.accept":
            lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                     "Sec-WebSocket-Accept: " + accept_key(self.env["HTTP_SEC_WEBSOCKET_KEY"])]
            if msg.get("subprotocol"):
                lines.append("Sec-WebSocket-Protocol: " + msg["subprotocol"])
            for name, value in msg.get("headers") or ():
                lines.append("%s: %s" % (name.decode("latin-1"), value.decode("latin-1")))
            await self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            self.state = "open"
            self.reading = self.loop.create_task(self._read())
            if self.ping_every > 0:
                self.pinging = self.loop.create_task(self._ping())
        elif kind == "websocket.close":
            await self._http(403, b"")  # closed before accept: the handshake is denied
        elif kind == "websocket.http.response.start":
            self.status, self.http_headers, self.http_started = msg["status"], list(msg.get("headers", ())), True
        elif kind == "websocket.http.response.body" and self.http_started:
            if not msg.get("more_body"):
                await self._http(self.status, msg.get("body", b""), self.http_headers)
        else:
            raise RuntimeError("%s before the WebSocket was accepted or denied" % kind)

    async def _http(self, status, body, headers=()):
        head, _ = response_head("HTTP/1.1", status, list(headers), len(body))
        self.status = status
        await self.write(head + body)
        self.state, self.close_code = "closed", 1006

    async def _read(self):
        r = self.reader
        try:
            while True:
                got = r.quick()  # a one-frame message already read: no coroutine
                if got is None:
                    if not r.buf:
                        await r.fill()
                        continue
                    got = await r.message(self._control)
                op, data = got
                if op == OP_CLOSE:
                    return
                self.nbytes += len(data)
                self._deliver({"type": "websocket.receive", ("text" if op == OP_TEXT else "bytes"): data})
                while len(self.inbox) >= INBOX:
                    self.wake_reader = self.loop.create_future()
                    await self.wake_reader
        except ProtocolError as e:
            await self._fail(e.code, str(e))
        except (EOFError, OSError):
            self._gone(1006)

    async def _control(self, op, payload):
        if op == OP_PING:
            await self.write(frame(OP_PONG, payload))
            return None
        if op == OP_PONG:
            return None
        code, reason = parse_close(payload)
        if self.state == "open":  # the client closes: answer, as RFC 6455 has it
            self.state = "closing"
            await self.write(frame(OP_CLOSE, close_payload(code)))
        self._gone(code)
        return OP_CLOSE, None

    async def _fail(self, code, why):
        """Close on the client's protocol error: send close, then read (and
        drop) what it is still sending until it closes — closing with its
        bytes unread would reset the connection before it read our close."""
        if self.state == "open":
            self.state = "closing"
            try:
                await self.write(frame(OP_CLOSE, close_payload(code, why)))
                await asyncio.wait_for(self.reader.discard(), CLOSE_TIMEOUT)
            except (OSError, EOFError, asyncio.TimeoutError):
                pass
        self._gone(code)

    def _gone(self, code):
        if self.close_code is None:
            self.close_code = code
        self.state = "closed"
        if not self.peer_closed.done():
            self.peer_closed.set_result(code)
        w = self.wake_app  # receive() says disconnect once the inbox is read
        if w is not None and not w.done():
            w.set_result(None)

    async def close(self, code=1000, reason=""):
        """Close from our side: send close, wait for the client's (at most
        CLOSE_TIMEOUT)."""
        if self.state != "open":
            return
        self.state = "closing"
        await self.write(frame(OP_CLOSE, close_payload(code, reason)))
        try:
            await asyncio.wait_for(asyncio.shield(self.peer_closed), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            self._gone(code)

    async def _ping(self):
        """Ping an open socket every ping_every seconds: the bytes going
        up the tunnel reset nginx's uwsgi_read_timeout, so an idle socket
        stays open (and a dead client is found)."""
        while self.state == "open":
            await asyncio.sleep(self.ping_every)
            if self.state == "open":
                try:
                    await self.write(frame(OP_PING, b""))
                except OSError:
                    return

    async def write(self, data):
        waiting = self.queue(data)
        if waiting is not None:
            await asyncio.shield(waiting)  # a sender cancelled must not cancel the writing

    def queue(self, data):
        """Write data after what is still queued: None when the socket took
        it at once (most frames: no wait), else the task writing the queue."""
        if not self.out:
            try:
                n = self.sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                self._gone(1006)
                raise
            if n == len(data):
                return None
            data = memoryview(data)[n:]
        self.out.append(data)
        if self.flushing is None:
            self.flushing = self.loop.create_task(self._flush())
            self.flushing.add_done_callback(_seen)  # a failure no sender awaited is no error to log
        return self.flushing

    async def _flush(self):
        try:
            while self.out:
                await self.loop.sock_sendall(self.sock, self.out[0])
                self.out.popleft()
        except OSError:
            self.out.clear()
            self._gone(1006)
            raise
        finally:
            self.flushing = None

    def finish(self):
        for t in (self.reading, self.pinging):
            if t is not None:
                t.cancel()
        self.reader.close()
