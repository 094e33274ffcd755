"""A streaming generator: each chunk is sent as it is produced, and close()
is always called (it leaves a marker file next to the app). /gated yields
its first chunk, then waits (10 s at most) until the client, having read
it, creates go.marker next to the app; it sends X-Accel-Buffering: no, as
an app that streams behind nginx does (nginx buffers a response otherwise).
/forever streams until the client leaves."""
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class Body:
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        for i in range(self.n):
            yield b"chunk %d\n" % i
            time.sleep(0.05)

    def close(self):
        with open(os.path.join(HERE, "closed.marker"), "a") as f:
            f.write("closed\n")


def gated():
    yield b"first\n"
    go = os.path.join(HERE, "go.marker")
    deadline = time.monotonic() + 10
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.005)
    yield b"released\n" if os.path.exists(go) else b"timed out\n"


class Forever:
    """64 KB chunks until the client goes away; close() says so."""

    def __iter__(self):
        chunk = b"x" * 65536
        while True:
            yield chunk

    def close(self):
        with open(os.path.join(HERE, "forever.marker"), "a") as f:
            f.write("closed\n")


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/forever":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Forever()
    if environ.get("PATH_INFO") == "/gated":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Accel-Buffering", "no")])
        return gated()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body(5)
