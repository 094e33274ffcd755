"""The RFC 6455 frame codec: frames the server sends (never masked), the
client's frames read and checked (masking, reserved bits and opcodes,
control frames' rules, lengths, the size limit), messages put together
from fragments with UTF-8 checked, close payloads. Standard library only."""

import codecs
import struct

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
# Close codes a peer may send (RFC 6455 7.4.1, IANA): 1004-1006 and 1015
# are never on the wire; 3000-4999 are the applications'.
SENDABLE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class ProtocolError(Exception):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


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


def whole(op, payload):
    """A message that came in one frame: (OP_TEXT, str) or (OP_BINARY, bytes)."""
    if op == OP_BINARY:
        return OP_BINARY, payload
    try:
        return OP_TEXT, payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(1007, "a text message that is not UTF-8")


class Reader(object):
    """Frames from the client, one message at a time. The socket is
    watched for as long as the reader wants bytes (not once per read: a
    watch is two epoll_ctl calls), and read ahead up to READ_AHEAD bytes."""

    READ_AHEAD = 1 << 20

    def __init__(self, loop, sock, max_message, initial=b""):
        self.loop, self.sock, self.max = loop, sock, max_message
        self.buf = bytearray(initial)
        self.waiter = None  # the future fill() waits on
        self.eof = self.watching = False

    def watch(self, on):
        if on != self.watching:
            self.watching = on
            if on:
                self.loop.add_reader(self.sock.fileno(), self._readable)
            else:
                self.loop.remove_reader(self.sock.fileno())

    def _readable(self):
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self.buf += data
            if len(self.buf) > self.READ_AHEAD:
                self.watch(False)  # the app is behind: its client waits, not our memory
        else:
            self.eof = True
            self.watch(False)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def fill(self):
        """Wait until more bytes are in the buffer; EOFError once the
        client has closed."""
        n = len(self.buf)
        while len(self.buf) == n:
            if self.eof:
                raise EOFError()
            self.watch(True)
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def exactly(self, n):
        while len(self.buf) < n:
            await self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    async def discard(self):
        """Read and drop what the client still sends, until it closes."""
        while True:
            self.buf.clear()
            await self.fill()

    def close(self):
        self.watch(False)

    def quick(self):
        """The next message when it is one short, well-formed data frame
        wholly in hand (the common case): (op, payload) at once, without a
        wait; None otherwise (message reads it)."""
        op = self.short_frame()
        if op not in (OP_TEXT | 0x80, OP_BINARY | 0x80):
            return None
        return whole(op & 0x0F, self.take_short())

    def short_frame(self):
        """A short, well-formed frame wholly in the buffer: its first byte
        (FIN and opcode); None if the buffer holds no such frame."""
        buf = self.buf
        if len(buf) >= 6 and buf[1] & 0x7F < 126 and len(buf) >= 6 + (buf[1] & 0x7F) and not buf[0] & 0x70 and buf[1] & 0x80:
            b0, n = buf[0], buf[1] & 0x7F
            op = b0 & 0x0F
            if n <= self.max and (op in (OP_CONT, OP_TEXT, OP_BINARY) or op in (OP_CLOSE, OP_PING, OP_PONG) and b0 & 0x80):
                return b0
        return None

    def take_short(self):
        """The payload of the short frame short_frame found, unmasked; the
        frame is taken off the buffer."""
        buf = self.buf
        n = buf[1] & 0x7F
        mask, payload = bytes(buf[2:6]), bytes(buf[6:6 + n])
        del buf[:6 + n]
        return unmask(payload, mask) if n else b""

    async def frame(self):
        if len(self.buf) < 6:
            await self.fill()  # one read brings the whole of a short frame, mostly
        b0 = self.short_frame()
        if b0 is not None:
            return bool(b0 & 0x80), b0 & 0x0F, self.take_short()
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
                    return whole(op, payload)
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
