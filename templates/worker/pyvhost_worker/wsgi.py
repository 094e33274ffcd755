"""WSGI (PEP 3333): the request body, the response, header checks, and
calling the app for one request. The C speedups' Responder and hot path
are the same in C (and used when loaded)."""

import errno
import os
import select

from .common import DRAIN_MAX, SOCKET_TIMEOUT_MS, _c, log
from .conn import ClientGone, abort_conn, error_response, read_some, wait_fd, write_all


class Input(object):
    """wsgi.input: the request body, CONTENT_LENGTH bytes, streamed from the
    connection after whatever arrived together with the vars. A body that
    ends early or stalls past --socket-timeout raises OSError naming the
    bytes expected and received (as uWSGI does): never a short body passed
    off as whole."""

    __slots__ = ("fd", "buf", "left", "length")

    def __init__(self, fd, buf, length):
        self.fd = fd
        self.buf = buf[:length]
        self.length = length
        self.left = length - len(self.buf)

    @staticmethod
    def length_of(cl):
        """CONTENT_LENGTH as a number of bytes, or -1 (logged) when it is
        not one: ASCII digits only, as RFC 9110 has it and nginx sends it.
        int() alone would take "-5", " 5", "5_0" and "\u0661\u0662". Both
        request paths call it."""
        if len(cl) <= 18 and cl.isascii() and cl.isdigit():
            return int(cl)
        log("refused a request with CONTENT_LENGTH %r: not a number of bytes (400)" % (cl[:40],))
        return -1

    def _fill(self, want):
        while len(self.buf) < want and self.left > 0:
            got = self.length - self.left
            try:
                chunk = read_some(self.fd, min(max(want - len(self.buf), 65536), self.left), "the request body")
            except OSError as e:
                raise OSError(e.errno, "%s: got %d of %d bytes (CONTENT_LENGTH)" % (e.strerror or e, got, self.length)) from None
            if not chunk:
                raise OSError(errno.ECONNRESET, "the request body ended after %d of %d bytes (CONTENT_LENGTH)" % (got, self.length))
            self.left -= len(chunk)
            self.buf += chunk

    def read(self, size=-1):
        if size is None or size < 0:
            self._fill(float("inf"))
            data, self.buf = self.buf, b""
            return data
        self._fill(size)
        data, self.buf = self.buf[:size], self.buf[size:]
        return data

    def readline(self, size=-1):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0 or self.left == 0 or (size is not None and 0 <= size <= len(self.buf)):
                break
            self._fill(len(self.buf) + 65536)
        end = i + 1 if i >= 0 else len(self.buf)
        if size is not None and 0 <= size < end:
            end = size
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self):
        """Read and drop what the app left unread, up to DRAIN_MAX, so
        closing the connection does not reset it under nginx's feet; True
        when the whole body was read."""
        self.buf = b""
        budget = DRAIN_MAX
        while self.left > 0 and budget > 0:
            chunk = read_some(self.fd, min(self.left, budget, 1 << 16), "the request body")
            if not chunk:
                return False
            self.left -= len(chunk)
            budget -= len(chunk)
        return self.left == 0


class FileWrapper(object):
    """wsgi.file_wrapper: iterates a file in blocks; a real file with a
    fileno is sent with os.sendfile instead."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


class EmptyInput(object):
    """wsgi.input of a request without a body; it holds no state, so one
    instance serves every such request."""

    def read(self, size=-1):
        return b""

    def readline(self, size=-1):
        return b""

    def readlines(self, hint=-1):
        return []

    def __iter__(self):
        return iter(())


EMPTY_INPUT = EmptyInput()


class Response(object):
    """The response being written, one per worker and reset per request, so
    start_response and write are made once, not per request. The C
    speedups' Responder is the same in C (and used when loaded)."""

    __slots__ = ("conn", "proto", "status", "headers", "sent", "nbytes", "hsize", "hcount")

    def begin(self, conn, proto):
        self.conn = conn
        self.proto = proto
        self.status = self.headers = None
        self.sent = False
        self.nbytes = self.hsize = self.hcount = 0

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called twice without exc_info")
        self.status, self.headers = status, headers
        return self.write

    def write(self, data):
        if not isinstance(data, bytes):
            raise TypeError("response data must be bytes")
        if not self.sent:
            self.send_headers(data, None)
        elif data:
            write_all(self.conn, data)
        self.nbytes += len(data)

    def send_headers(self, first_chunk, content_length):
        status, headers = self.status, self.headers
        if status is None:
            raise AssertionError("the app did not call start_response")
        if not isinstance(first_chunk, bytes):
            raise TypeError("response data must be bytes")
        if isinstance(status, str) and bad_text(status):
            raise ValueError("response status %r has CR, LF or NUL" % (status,))
        lines = [self.proto, " ", status, "\r\n"]
        has_cl = False
        for k, v in headers:
            if not has_cl and k.lower() == "content-length":
                has_cl = True
            check_header(k, v)
            lines += (k, ": ", v, "\r\n")
        if not has_cl and content_length is not None:
            lines += ("Content-Length: ", str(content_length), "\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        self.sent = True
        self.hsize = len(head)
        self.hcount = len(headers) + (0 if has_cl or content_length is None else 1)
        write_all(self.conn, head + first_chunk if first_chunk else head)


# What an app may put in its status and headers, checked as gunicorn does
# before a byte is sent (the app gets a 500 and the log its mistake); the C
# speedups' check_header is the same.
TOKEN_CHARS = str.maketrans("", "", "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
                        "transfer-encoding", "upgrade"))


def bad_text(text):
    return "\r" in text or "\n" in text or "\0" in text


def check_header(name, value):
    """A header name is an RFC 9110 token, its value holds no CR, LF or NUL
    (they would split the response), and hop-by-hop headers are the
    server's (PEP 3333)."""
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("status and headers must be str")
    if not name or name.translate(TOKEN_CHARS):
        raise ValueError("response header name %r is not an RFC 9110 token" % (name,))
    if bad_text(value):
        raise ValueError("response header %r has CR, LF or NUL in its value" % (name,))
    if name.lower() in HOP_BY_HOP:
        raise ValueError("response header %r is hop-by-hop: PEP 3333 leaves it to the server" % (name,))


# The response object the worker uses: the C one when the speedups are loaded.
Responder = _c.Responder if _c is not None else Response


class WSGICalls(object):
    """The Worker's WSGI half: one request through the app."""

    def call_app(self, conn, env, body_prefix, start, nvars, pktsize):
        proto = env.get("SERVER_PROTOCOL") or "HTTP/1.0"
        r = self.resp
        r.begin(conn, proto)
        cl = env.get("CONTENT_LENGTH")
        if cl and cl != "0":
            length = Input.length_of(cl)
            if length < 0:
                error_response(conn, 400, proto)
                self.count(requests=1, errors=0, tx=0, status=400)
                if self.logging:
                    self.log_request(env, 400, 0, start, nvars, pktsize, proto)
                return
            inp = env["wsgi.input"] = Input(conn, body_prefix, length)
        else:
            inp = env["wsgi.input"] = EMPTY_INPUT  # stateless: shared by bodiless requests
        status_code = 500
        result = None
        try:
            result = self.app(env, self.start_response)
            if type(result) in (list, tuple) and not r.sent:
                body = result[0] if len(result) == 1 else b"".join(result)
                r.send_headers(body, len(body))
                r.nbytes += len(body)
            elif isinstance(result, FileWrapper) and hasattr(result.filelike, "fileno") and not r.sent:
                self.send_file(conn, result, r)
            else:
                write = r.write
                for chunk in result:
                    if chunk:
                        write(chunk)
                if not r.sent:
                    r.send_headers(b"", 0)
            status_code = int(r.status[:3])
        except ClientGone:
            status_code = int(r.status[:3]) if r.status else 499
        except Exception as e:
            if not r.sent:
                self.report("raised", e)
                error_response(conn, 500, proto)
            else:
                # Too late for a 500: the client must see the response cut,
                # not a short body that looks whole.
                self.report("raised mid-response (the connection is aborted)", e)
                abort_conn(conn)
                inp = EMPTY_INPUT  # nothing more to read
            status_code = 500
        finally:
            if result is not None and hasattr(result, "close"):
                try:
                    result.close()
                except Exception as e:
                    self.report("close() raised", e)
        if inp is not EMPTY_INPUT:
            try:
                inp.drain()
            except OSError:
                pass
        self.count(requests=1, errors=int(status_code >= 500), tx=r.nbytes, status=status_code)
        if self.logging:
            self.log_request(env, status_code, r.nbytes, start, nvars, pktsize, proto)


    def send_file(self, conn, wrapper, r):
        f = wrapper.filelike
        fileno = f.fileno()
        try:
            offset = f.tell()
        except (OSError, AttributeError):
            offset = 0
        size = os.fstat(fileno).st_size - offset
        r.send_headers(b"", size)
        while size > 0:
            try:
                n = os.sendfile(conn, fileno, offset, min(size, 1 << 30))
            except BlockingIOError:
                if not wait_fd(conn, select.POLLOUT, SOCKET_TIMEOUT_MS):
                    raise ClientGone()
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise ClientGone()
            if n == 0:
                break
            offset += n
            size -= n
            r.nbytes += n
