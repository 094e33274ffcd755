"""A streaming generator: each chunk is sent as it is produced, and close()
is always called (it leaves a marker file next to the app)."""
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


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Body(5)
