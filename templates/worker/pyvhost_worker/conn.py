"""A request's connection: non-blocking reads and writes with the
--socket-timeout deadline, closing, aborting, error pages."""

import errno
import os
import select
import struct

from .common import ERROR_PAGES, SOCKET_TIMEOUT_MS, socket


def wait_fd(fd, events, ms):
    """Wait until fd is ready for events (select.POLLIN or POLLOUT), at
    most ms; False when the time ran out. The C path's wait_fd is the same."""
    p = select.poll()
    p.register(fd, events)
    while True:
        try:
            return bool(p.poll(ms))
        except InterruptedError:
            continue


def read_some(fd, n, what):
    """os.read on a non-blocking connection, waiting at most
    --socket-timeout for data; the app sees data or a clean OSError."""
    while True:
        try:
            return os.read(fd, n)
        except BlockingIOError:
            pass  # raised below, outside this handler: no BlockingIOError in the app's traceback
        if not wait_fd(fd, select.POLLIN, SOCKET_TIMEOUT_MS):
            raise OSError(errno.ETIMEDOUT, "timed out after %g s waiting for %s" % (SOCKET_TIMEOUT_MS / 1000.0, what))


class ClientGone(Exception):
    pass


def close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass


def abort_conn(conn):
    """Make close() reset the connection (TCP), so a response cut short
    shows as an error to nginx and the client, not as a short body."""
    s = socket.socket(fileno=conn)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    finally:
        s.detach()


def write_all(fd, data):
    """Write all of data, waiting at most --socket-timeout whenever the
    peer's window is full: a peer that stops reading is a client gone."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            if not wait_fd(fd, select.POLLOUT, SOCKET_TIMEOUT_MS):
                raise ClientGone()
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise ClientGone()
        view = view[n:]


def error_response(fd, code, proto="HTTP/1.1"):
    reason = ERROR_PAGES[code]
    body = ("%d %s\n" % (code, reason)).encode()
    head = "%s %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
        proto, code, reason, len(body))
    try:
        write_all(fd, head.encode("latin-1") + body)
    except (ClientGone, OSError):
        pass


# --------------------------------------------------------------------------
# The scoreboard
