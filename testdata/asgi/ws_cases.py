"""A representative set of the Autobahn test suite's cases, scripted with
raw sockets against the ASGI worker's RFC 6455 codec, through nginx:
framing sizes, ping/pong, reserved bits and opcodes, fragmentation,
UTF-8 checks, close codes and reasons, masking, the message size limit.
argv[1]: nginx's port; argv[2]: the size limit the worker was given. Prints
one line per case; exits 1 if any failed. With argv[3], a Host: sends one
text message there and prints the answer instead."""
import base64
import os
import socket
import struct
import sys

PORT, LIMIT = int(sys.argv[1]), int(sys.argv[2])
failed = []


def connect(path="/echo", host="ws.test"):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            raise EOFError("no handshake answer")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise AssertionError("handshake: %r" % head[:80])
    return s


def send_frame(s, op, payload, fin=True, rsv=0, mask=True):
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        head += key
    s.sendall(head + payload)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def recv_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    if b1 & 0x80:
        raise AssertionError("the server masked a frame")
    return b0 & 0x0F, bool(b0 & 0x80), recv_exact(s, n)


def expect_close(s, code):
    while True:
        op, _, payload = recv_frame(s)
        if op == 8:
            got = struct.unpack("!H", payload[:2])[0] if payload else 1005
            assert got == code, "closed with %d, want %d" % (got, code)
            return


def expect_echo(s, op, payload):
    got_op, fin, got = recv_frame(s)
    assert (got_op, fin, got) == (op, True, payload), "got op %d fin %s %d bytes" % (got_op, fin, len(got))


def case(name):
    def run(fn):
        try:
            s = connect()
            try:
                fn(s)
            finally:
                s.close()
            print("ok   %s" % name)
        except Exception as e:
            print("FAIL %s: %s" % (name, e))
            failed.append(name)
    return run


if len(sys.argv) > 3:  # ws_cases.py PORT 0 HOST: one text message through HOST, the answer printed
    s = connect("/", sys.argv[3])
    send_frame(s, 1, b"hello")
    print(recv_frame(s)[2].decode())
    sys.exit(0)

for size in (0, 125, 126, 127, 65535, 65536, 1 << 20):
    @case("1.1 text of %d bytes echoed" % size)
    def _(s, size=size):
        send_frame(s, 1, b"*" * size)
        expect_echo(s, 1, b"*" * size)


@case("1.2 binary echoed")
def _(s):
    send_frame(s, 2, bytes(range(256)) * 300)
    expect_echo(s, 2, bytes(range(256)) * 300)


@case("2.2 ping of 125 bytes answered by its pong")
def _(s):
    send_frame(s, 9, b"p" * 125)
    assert recv_frame(s) == (10, True, b"p" * 125)


@case("2.5 ping of 126 bytes: protocol error")
def _(s):
    send_frame(s, 9, b"p" * 126)
    expect_close(s, 1002)


for rsv in (1, 2, 4, 7):
    @case("3.%d reserved bits %d: protocol error" % (rsv, rsv))
    def _(s, rsv=rsv):
        send_frame(s, 1, b"x", rsv=rsv)
        expect_close(s, 1002)

for op in (3, 7, 11, 15):
    @case("4 reserved opcode %d: protocol error" % op)
    def _(s, op=op):
        send_frame(s, op, b"")
        expect_close(s, 1002)


@case("5.6 a text in two fragments, a ping between, echoed whole")
def _(s):
    send_frame(s, 1, b"frag", fin=False)
    send_frame(s, 9, b"mid")
    send_frame(s, 0, b"mented")
    assert recv_frame(s) == (10, True, b"mid")
    expect_echo(s, 1, b"fragmented")


@case("5.9 a continuation with nothing to continue: protocol error")
def _(s):
    send_frame(s, 0, b"x")
    expect_close(s, 1002)


@case("5.18 a new text inside a fragmented one: protocol error")
def _(s):
    send_frame(s, 1, b"a", fin=False)
    send_frame(s, 1, b"b")
    expect_close(s, 1002)


@case("5.1 a fragmented ping: protocol error")
def _(s):
    send_frame(s, 9, b"a", fin=False)
    expect_close(s, 1002)


@case("6.2 UTF-8 split mid-character across fragments, echoed")
def _(s):
    text = "κόσμε".encode()
    send_frame(s, 1, text[:3], fin=False)
    send_frame(s, 0, text[3:])
    expect_echo(s, 1, text)


for bad in (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", b"\xff", b"\xc0\xaf", b"\xf4\x90\x80\x80"):
    @case("6.x invalid UTF-8 %r: 1007" % bad[-4:])
    def _(s, bad=bad):
        send_frame(s, 1, bad)
        expect_close(s, 1007)


@case("7.1 a close with 1000 is answered with 1000")
def _(s):
    send_frame(s, 8, struct.pack("!H", 1000) + b"bye")
    expect_close(s, 1000)


@case("7.3 a close with a 1-byte payload: protocol error")
def _(s):
    send_frame(s, 8, b"x")
    expect_close(s, 1002)


for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000):
    @case("7.9 close code %d is not sendable: protocol error" % code)
    def _(s, code=code):
        send_frame(s, 8, struct.pack("!H", code))
        expect_close(s, 1002)

for code in (1001, 1011, 3000, 4999):
    @case("7.7 close code %d is answered" % code)
    def _(s, code=code):
        send_frame(s, 8, struct.pack("!H", code))
        expect_close(s, code)


@case("7.5 a close reason that is not UTF-8: 1007")
def _(s):
    send_frame(s, 8, struct.pack("!H", 1000) + b"\xff")
    expect_close(s, 1007)


@case("an unmasked frame from the client: protocol error")
def _(s):
    send_frame(s, 1, b"plain", mask=False)
    expect_close(s, 1002)


@case("9 a message over the limit: 1009")
def _(s):
    send_frame(s, 2, b"\0" * (LIMIT + 1))
    expect_close(s, 1009)


@case("9 a fragmented message over the limit: 1009")
def _(s):
    half = LIMIT // 2 + 1
    send_frame(s, 2, b"\0" * half, fin=False)
    send_frame(s, 0, b"\0" * half)
    expect_close(s, 1009)

sys.exit(1 if failed else 0)
