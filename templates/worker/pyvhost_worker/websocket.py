"""WebSockets (RFC 6455) for ASGI apps, over the uwsgi connection nginx
turns into a tunnel once the app answers 101: the handshake, the frame
codec (masking, fragmentation, ping/pong, close codes, UTF-8 checks of
text, a size limit per message) and the websocket scope's receive and
send. Standard library only."""

import asyncio
import base64
import codecs
import collections
import hashlib
import struct

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
# Close codes a peer may send (RFC 6455 7.4.1, IANA): 1004-1006 and 1015
# are never on the wire; 3000-4999 are the applications'.
SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))
CLOSE_TIMEOUT = 5.0  # how long the close handshake waits for the peer's close
INBOX = 16  # messages read ahead of the app


class ProtocolError(Exception):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


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


def frame(op, payload, fin=True):
    """A server's frame (never masked)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def close_payload(code, reason=""):
    return b"" if code == 1005 else struct.pack("!H", code) + reason.encode("utf-8")[:123]


def unmask(data, mask):
    """XOR with the 4-byte mask, a machine word at a time."""
    n = len(data)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ m).to_bytes(n, "big")


def parse_close(payload):
    """(code, reason) of a close frame's payload; ProtocolError if bad."""
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise ProtocolError(1002, "a close frame of 1 byte")
    code = struct.unpack("!H", payload[:2])[0]
    if code not in SENDABLE and not 3000 <= code <= 4999:
        raise ProtocolError(1002, "close code %d" % code)
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(1007, "a close reason that is not UTF-8")


class Reader(object):
    """Frames from the client, one message at a time."""

    def __init__(self, loop, sock, max_message, initial=b""):
        self.loop, self.sock, self.max = loop, sock, max_message
        self.buf = bytearray(initial)

    async def exactly(self, n):
        while len(self.buf) < n:
            data = await self.loop.sock_recv(self.sock, max(65536, n - len(self.buf)))
            if not data:
                raise EOFError()
            self.buf += data
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def fill(self):
        data = await self.loop.sock_recv(self.sock, 65536)
        if not data:
            raise EOFError()
        self.buf += data

    async def frame(self):
        buf = self.buf
        if len(buf) < 6:
            await self.fill()  # one read brings the whole of a short frame, mostly
        if len(buf) >= 6 and buf[1] & 0x7F < 126 and len(buf) >= 6 + (buf[1] & 0x7F) and not buf[0] & 0x70 and buf[1] & 0x80:
            # The whole of a short, well-formed frame is in hand (the
            # common case): parsed without a wait.
            b0, n = buf[0], buf[1] & 0x7F
            op = b0 & 0x0F
            if n <= self.max and (op in (OP_CONT, OP_TEXT, OP_BINARY) or op in (OP_CLOSE, OP_PING, OP_PONG) and b0 & 0x80):
                mask, payload = bytes(buf[2:6]), bytes(buf[6:6 + n])
                del buf[:6 + n]
                return bool(b0 & 0x80), op, unmask(payload, mask) if n else b""
        b0, b1 = await self.exactly(2)
        fin, op, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
        if b0 & 0x70:
            raise ProtocolError(1002, "reserved bits set (no extension was agreed)")
        if not b1 & 0x80:
            raise ProtocolError(1002, "an unmasked frame from the client")
        if op >= 8 and (not fin or n > 125):
            raise ProtocolError(1002, "a fragmented or long control frame")
        if op not in (OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG):
            raise ProtocolError(1002, "opcode %d" % op)
        if n == 126:
            n = struct.unpack("!H", await self.exactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.exactly(8))[0]
            if n >> 63:
                raise ProtocolError(1002, "a 64-bit length with its top bit set")
        if n > self.max:
            raise ProtocolError(1009, "a frame of %d bytes, over --websocket-max-message %d" % (n, self.max))
        mask = await self.exactly(4)
        return bool(fin), op, unmask(await self.exactly(n), mask) if n else b""

    async def message(self, on_control):
        """The next data message: (OP_TEXT, str) or (OP_BINARY, bytes);
        control frames in between go to on_control(op, payload), which
        returns a close's (code, reason) to end with, or None."""
        op0, parts, size, text = None, [], 0, None
        while True:
            fin, op, payload = await self.frame()
            if op >= 8:
                end = await on_control(op, payload)
                if end is not None:
                    return end
                continue
            if (op == OP_CONT) != (op0 is not None):
                raise ProtocolError(1002, "a continuation frame out of place" if op == OP_CONT else
                                    "a new message inside a fragmented one")
            if op0 is None:
                if fin:  # a message in one frame (the common case)
                    if op == OP_BINARY:
                        return OP_BINARY, payload
                    try:
                        return OP_TEXT, payload.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtocolError(1007, "a text message that is not UTF-8")
                op0 = op
                text = codecs.getincrementaldecoder("utf-8")() if op == OP_TEXT else None
            size += len(payload)
            if size > self.max:
                raise ProtocolError(1009, "a message over --websocket-max-message %d bytes" % self.max)
            if text is not None:
                try:
                    parts.append(text.decode(payload, final=fin))
                except UnicodeDecodeError:
                    raise ProtocolError(1007, "a text message that is not UTF-8")
            else:
                parts.append(payload)
            if fin:
                return (OP_TEXT, "".join(parts)) if text is not None else (OP_BINARY, b"".join(parts))


class WebSocket(object):
    """The websocket scope's receive and send over one connection."""

    def __init__(self, loop, sock, env, max_message, body=b"", ping_every=0):
        self.loop, self.sock, self.env = loop, sock, env
        self.ping_every = ping_every
        self.pinging = None
        self.writing = asyncio.Lock()  # one frame at a time on the wire, whoever sends
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

    async def receive(self):
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while not self.inbox:
            if self.state == "closed":
                return {"type": "websocket.disconnect", "code": self.close_code or 1006}
            self.wake_app = self.loop.create_future()
            await self.wake_app
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

    async def send(self, msg):
        kind = msg["type"]
        if self.state == "connecting":
            await self._send_handshake(kind, msg)
            return
        if kind.startswith("websocket.http.response"):
            raise RuntimeError("%s after the WebSocket was accepted" % kind)
        if self.state != "open":
            raise OSError("the WebSocket is closed")  # spec 2.4: sending after close raises
        if kind == "websocket.send":
            if msg.get("bytes") is not None:
                await self.write(frame(OP_BINARY, msg["bytes"]))
            elif msg.get("text") is not None:
                await self.write(frame(OP_TEXT, msg["text"].encode("utf-8")))
            else:
                raise ValueError("websocket.send without bytes or text")
        elif kind == "websocket.close":
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
        from .asgi import response_head
        head, _ = response_head("HTTP/1.1", status, list(headers), len(body))
        self.status = status
        await self.write(head + body)
        self.state, self.close_code = "closed", 1006

    async def _read(self):
        try:
            while True:
                op, data = await self.reader.message(self._control)
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
                await asyncio.wait_for(self._drain(), CLOSE_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                pass
        self._gone(code)

    async def _drain(self):
        while await self.loop.sock_recv(self.sock, 1 << 16):
            pass

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
        async with self.writing:
            try:
                n = self.sock.send(data)  # most frames fit the socket's buffer: no wait
                if n < len(data):
                    await self.loop.sock_sendall(self.sock, memoryview(data)[n:])
            except BlockingIOError:
                await self._write_waiting(data)
            except OSError:
                self._gone(1006)
                raise

    async def _write_waiting(self, data):
        try:
            await self.loop.sock_sendall(self.sock, data)
        except OSError:
            self._gone(1006)
            raise

    def finish(self):
        for t in (self.reading, self.pinging):
            if t is not None:
                t.cancel()
