"""ASGI 3 HTTP (asgiref's www.rst, spec 2.4) over the uwsgi protocol: the
scope made from nginx's vars, and one request's receive and send. The body
is read from the connection only as the app asks for it (a 100 MB upload is
never held whole); the response goes out as the app sends it."""

import asyncio

from .common import SOCKET_TIMEOUT_MS
from .wsgi import check_header

SPEC = {"version": "3.0", "spec_version": "2.4"}
BODY_CHUNK = 1 << 16
TIMEOUT = SOCKET_TIMEOUT_MS / 1000.0
HTTP_VERSIONS = {"HTTP/1.0": "1.0", "HTTP/1.1": "1.1", "HTTP/2.0": "2", "HTTP/2": "2", "HTTP/3": "3"}


class ClientDisconnected(OSError):
    """send() after the client went away (spec 2.4: an OSError)."""


def _latin1(s):
    return s.encode("latin-1")


def headers_of(env):
    """The request's headers as ASGI has them: lower-cased byte names, in
    nginx's order; CONTENT_TYPE and CONTENT_LENGTH are headers again."""
    out = []
    for k, v in env.items():
        if k[:5] == "HTTP_":
            out.append((_latin1(k[5:].lower().replace("_", "-")), _latin1(v)))
    for k, name in (("CONTENT_TYPE", b"content-type"), ("CONTENT_LENGTH", b"content-length")):
        if env.get(k):
            out.append((name, _latin1(env[k])))
    return out


def _addr(host, port):
    if not host:
        return None
    try:
        return [host, int(port or 0)]
    except ValueError:
        return [host, 0]


def scope_of(env, kind, state):
    """The scope of a request ("http" or "websocket") from its environ
    (parsed vars, SCRIPT_NAME and PATH_INFO split as for WSGI). path is the
    whole path (root_path and below, decoded as UTF-8), as the spec and
    today's frameworks have it; raw_path is the request target as sent."""
    root = env.get("SCRIPT_NAME", "")
    path = _latin1(root + env.get("PATH_INFO", "")).decode("utf-8", "replace")
    scheme = env.get("wsgi.url_scheme", "http")
    scope = {
        "type": kind,
        "asgi": SPEC,
        "http_version": HTTP_VERSIONS.get(env.get("SERVER_PROTOCOL", ""), "1.1"),
        "scheme": ("wss" if scheme == "https" else "ws") if kind == "websocket" else scheme,
        "path": path,
        "raw_path": _latin1(env.get("REQUEST_URI", "").partition("?")[0]) or _latin1(path),
        "query_string": _latin1(env.get("QUERY_STRING", "")),
        "root_path": _latin1(root).decode("utf-8", "replace"),
        "headers": headers_of(env),
        "client": _addr(env.get("REMOTE_ADDR"), env.get("REMOTE_PORT")),
        "server": _addr(env.get("SERVER_NAME"), env.get("SERVER_PORT")),
        "state": dict(state),
    }
    if kind == "http":
        scope["method"] = env.get("REQUEST_METHOD", "GET").upper()
    return scope


def reason(status):
    try:
        from http import HTTPStatus
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def response_head(proto, status, headers, body_len):
    """The status line and headers an app sent, checked as a WSGI app's
    are; Content-Length is added when the whole body is in hand."""
    if not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError("ASGI response status %r is not a 3-digit int" % (status,))
    lines = ["%s %d %s\r\n" % (proto, status, reason(status))]
    has_cl = False
    for pair in headers:
        name, value = pair
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise TypeError("ASGI response headers must be [bytes, bytes] pairs, not %r" % (pair,))
        n, v = name.decode("latin-1"), value.decode("latin-1")
        check_header(n, v)
        has_cl = has_cl or n.lower() == "content-length"
        lines += (n, ": ", v, "\r\n")
    if not has_cl and body_len is not None:
        lines += ("Content-Length: ", str(body_len), "\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1"), len(headers) + (0 if has_cl or body_len is None else 1)


class HTTPRequest(object):
    """One request's receive and send, on a non-blocking connection sock."""

    def __init__(self, loop, sock, body, length, proto, on_progress):
        self.loop, self.sock = loop, sock
        self.buf = body[:length]
        self.left = length - len(self.buf)
        self.proto = proto
        self.request_done = False  # the whole body was given to the app
        self.started = self.finished = self.gone = False
        self.status = 500
        self.headers = []
        self.nbytes = self.hsize = self.hcount = 0
        self.on_progress = on_progress
        self.disconnect = None  # a task that sees the client go, once the body is read

    async def receive(self):
        if not self.request_done:
            return await self._body()
        if self.disconnect is None:
            self.disconnect = self.loop.create_task(self._wait_gone())
        await asyncio.shield(self.disconnect)
        return {"type": "http.disconnect"}

    async def _body(self):
        if self.buf or self.left == 0:
            chunk, self.buf = self.buf[:BODY_CHUNK], self.buf[BODY_CHUNK:]
        else:
            try:
                chunk = await asyncio.wait_for(self.loop.sock_recv(self.sock, min(self.left, BODY_CHUNK)), TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                chunk = b""
            if not chunk:  # the body ended early or stalled: the client is gone
                self.gone = self.request_done = True
                return {"type": "http.disconnect"}
            self.left -= len(chunk)
        more = bool(self.buf) or self.left > 0
        self.request_done = not more
        self.on_progress()
        return {"type": "http.request", "body": chunk, "more_body": more}

    async def _wait_gone(self):
        # nginx sends nothing after the body: readable now means closed.
        while not self.gone and not self.finished:
            try:
                data = await self.loop.sock_recv(self.sock, 1)
            except OSError:
                data = b""
            if not data:
                self.gone = True

    async def send(self, msg):
        if self.gone:
            raise ClientDisconnected("the client went away")
        kind = msg["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            self.started, self.status = True, msg["status"]
            self.headers = list(msg.get("headers", ()))
            response_head(self.proto, self.status, self.headers, 0)  # check it now: the app's mistake, its traceback
            return
        if kind != "http.response.body":
            raise RuntimeError("unexpected ASGI message %r in an HTTP request" % (kind,))
        if not self.started:
            raise RuntimeError("http.response.body before http.response.start")
        if self.finished:
            raise RuntimeError("http.response.body after the response ended")
        body = msg.get("body", b"")
        more = msg.get("more_body", False)
        data = body
        if self.hsize == 0:
            head, self.hcount = response_head(self.proto, self.status, self.headers, None if more else len(body))
            self.hsize = len(head)
            data = head + body
        self.finished = not more
        await self.write(data)
        self.nbytes += len(body)

    async def write(self, data):
        try:
            await asyncio.wait_for(self.loop.sock_sendall(self.sock, data), TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            self.gone = True
            raise ClientDisconnected("the client went away")
        self.on_progress()
