"""ASGI 3 HTTP (asgiref's www.rst, spec 2.4) over the uwsgi protocol: the
scope made from nginx's vars, and the response head made from what the app
sends (exchange.py is one request's receive and send). scope_of and
head_lines have C twins in the speedups (csrc/asgi.c), used when built."""

from .common import _c
from .wsgi import check_header

SPEC = {"version": "3.0", "spec_version": "2.4"}
BODY_CHUNK = 1 << 16  # the most of a body one http.request message carries
HTTP_VERSIONS = {"HTTP/1.0": "1.0", "HTTP/1.1": "1.1", "HTTP/2.0": "2", "HTTP/2": "2", "HTTP/3": "3"}


class ClientDisconnected(OSError):
    """send() after the client went away (spec 2.4: an OSError)."""


_NAMES = {}  # HTTP_USER_AGENT -> b"user-agent", as met


def headers_of(env):
    """The request's headers as ASGI has them: lower-cased byte names, in
    nginx's order; CONTENT_TYPE and CONTENT_LENGTH are headers again."""
    names = _NAMES
    out = []
    for k, v in env.items():
        if k[:5] == "HTTP_":
            name = names.get(k)
            if name is None:
                name = names[k] = k[5:].lower().replace("_", "-").encode("latin-1")
                if len(names) > 4096:
                    names.clear()  # a client inventing header names: do not grow for ever
            out.append((name, v.encode("latin-1")))
    ct, cl = env.get("CONTENT_TYPE"), env.get("CONTENT_LENGTH")
    if ct:
        out.append((b"content-type", ct.encode("latin-1")))
    if cl:
        out.append((b"content-length", cl.encode("latin-1")))
    return out


def _addr(host, port):
    if not host:
        return None
    try:
        return [host, int(port or 0)]
    except ValueError:
        return [host, 0]


def scope_of_py(env, kind, state):
    """The scope of a request ("http" or "websocket") from its environ
    (parsed vars, SCRIPT_NAME and PATH_INFO split as for WSGI). path is the
    whole path (root_path and below, decoded as UTF-8), as the spec and
    today's frameworks have it; raw_path is the request target as sent."""
    get = env.get
    root = get("SCRIPT_NAME", "")
    path = root + get("PATH_INFO", "")
    if not path.isascii():  # nginx's bytes, as latin-1: the client sent UTF-8
        path = path.encode("latin-1").decode("utf-8", "replace")
        root = root.encode("latin-1").decode("utf-8", "replace")
    scheme = get("wsgi.url_scheme", "http")
    raw = get("REQUEST_URI", "").partition("?")[0]
    scope = {
        "type": kind,
        "asgi": SPEC,
        "http_version": HTTP_VERSIONS.get(get("SERVER_PROTOCOL", ""), "1.1"),
        "scheme": ("wss" if scheme == "https" else "ws") if kind == "websocket" else scheme,
        "path": path,
        "raw_path": raw.encode("latin-1") if raw else path.encode("utf-8"),
        "query_string": get("QUERY_STRING", "").encode("latin-1"),
        "root_path": root,
        "headers": headers_of(env),
        "client": _addr(get("REMOTE_ADDR"), get("REMOTE_PORT")),
        "server": _addr(get("SERVER_NAME"), get("SERVER_PORT")),
        "state": state.copy(),
    }
    if kind == "http":
        scope["method"] = get("REQUEST_METHOD", "GET").upper()
    return scope


def _reasons():
    from http import HTTPStatus
    return {s.value: s.phrase for s in HTTPStatus}


REASONS = _reasons()


_GOOD_NAMES = {}  # a header name already checked -> whether it is Content-Length


def _check_name(name, value):
    """Whether name (bytes, checked once: an RFC 9110 token, not
    hop-by-hop) is Content-Length; the value is checked by the caller."""
    known = _GOOD_NAMES.get(name)
    if known is None:
        check_header(name.decode("latin-1"), value.decode("latin-1"))  # raises, naming the rule
        known = _GOOD_NAMES[name] = name.lower() == b"content-length"
        if len(_GOOD_NAMES) > 1024:
            _GOOD_NAMES.clear()
    return known


_HEADS = {}  # (proto, status, headers) -> head_lines' answer: apps send the same ones again and again


def head_lines_py(proto, status, headers):
    """The status line and headers an app sent, checked as a WSGI app's
    are: (the head without its final CRLF, whether it has a Content-Length)."""
    if type(status) is not int:  # before the cache: 200.0 == 200 there
        raise ValueError("ASGI response status %r is not a 3-digit int" % (status,))
    if type(headers) is not list:
        headers = list(headers)  # an iterator must not be spent on the cache's key
    try:
        key = (proto, status, tuple(headers))
        got = _HEADS.get(key)
    except TypeError:  # a header as a list, or another unhashable sequence: not kept
        key = got = None
    if got is None:
        got = _head_lines(proto, status, headers)
        if key is not None:
            if len(_HEADS) > 256:
                _HEADS.clear()
            _HEADS[key] = got
    return got


def _head_lines(proto, status, headers):
    if type(status) is not int or not 100 <= status <= 999:
        raise ValueError("ASGI response status %r is not a 3-digit int" % (status,))
    parts = [("%s %d %s\r\n" % (proto, status, REASONS.get(status, "Unknown"))).encode("latin-1")]
    has_cl = False
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError("ASGI response headers must be [bytes, bytes] pairs, not %r" % (pair,))
        if type(name) is not bytes or type(value) is not bytes:
            if not isinstance(name, bytes) or not isinstance(value, bytes):
                raise TypeError("ASGI response headers must be [bytes, bytes] pairs, not %r" % (pair,))
            name, value = bytes(name), bytes(value)
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ValueError("response header %r has CR, LF or NUL in its value" % (name.decode("latin-1"),))
        if _check_name(name, value):
            has_cl = True
        parts += (name, b": ", value, b"\r\n")
    return b"".join(parts), has_cl


def response_head(proto, status, headers, body_len):
    """The whole head: Content-Length is added when the whole body is in
    hand (body_len) and the app gave none; also the number of headers."""
    head, has_cl = head_lines(proto, status, headers)  # the C twin when built
    return head_end(head, has_cl, len(headers), body_len)


def head_end(head, has_cl, nheaders, body_len):
    """head_lines' head ended: with a Content-Length when the whole body is
    in hand (body_len, else None) and the app gave none; and how many
    headers it has then."""
    if has_cl or body_len is None:
        return head + b"\r\n", nheaders
    return head + b"Content-Length: %d\r\n\r\n" % body_len, nheaders + 1


scope_of, head_lines = scope_of_py, head_lines_py
if _c is not None:
    _c.asgi_init(spec=SPEC, versions=HTTP_VERSIONS, reasons=REASONS, client_gone=ClientDisconnected,
                body_chunk=BODY_CHUNK)
    scope_of, head_lines = _c.asgi_scope, _c.head_lines
