"""The uwsgi protocol's vars block, parsed and made an environ; the C
speedups' parse_vars and finish_environ (csrc/environ.c) are the same."""

from .common import REFUSED_VARS


def parse_vars_py(b, end, max_vars):
    """Parse the vars block; returns (environ, end), or (None, -1) when it
    is malformed. Lengths come from the bytes, strings are sliced from one
    latin-1 decoding of the same bytes (PEP 3333's "bytes as latin-1"), so
    offsets agree. csrc/environ.c does the same in C."""
    s = b[:end].decode("latin-1")
    env = {}
    pos = 4
    try:
        while pos < end:
            q = pos + 2 + (b[pos] | b[pos + 1] << 8)
            r = q + 2 + (b[q] | b[q + 1] << 8)
            env[s[pos + 2:q]] = s[q + 2:r]
            pos = r
    except IndexError:
        return None, -1
    if pos != end or len(env) > max_vars or "" in env:
        return None, -1
    return env, end


def finish_environ_py(env, key, static):
    """Prepare a parsed environ for the app; csrc/environ.c's finish_environ
    does the same in C. Returns 1 when the request names another app than
    key, 2 when it carries a var that loads code or files, else 0."""
    if key is not None:
        pyhome = env.get("UWSGI_PYHOME") or env.get("UWSGI_HOME", "")
        script = env.get("UWSGI_SCRIPT")
        if script is None:
            script = env.get("UWSGI_MODULE", "")
            if script and env.get("UWSGI_CALLABLE"):
                script += ":" + env["UWSGI_CALLABLE"]
        if (pyhome, env.get("UWSGI_CHDIR", ""), script) != key:
            return 1
    for k in REFUSED_VARS:
        if k in env:
            return 2
    # nginx also passes Content-Length and Content-Type as headers; CGI
    # and PEP 3333 have them only as CONTENT_LENGTH and CONTENT_TYPE.
    env.pop("HTTP_CONTENT_LENGTH", None)
    env.pop("HTTP_CONTENT_TYPE", None)
    sn = env.get("SCRIPT_NAME", "")
    pi = env.setdefault("PATH_INFO", "")
    if sn:
        sn = sn.rstrip("/")
        env["SCRIPT_NAME"] = sn
        if pi == sn or pi.startswith(sn + "/"):
            env["PATH_INFO"] = pi[len(sn):]
    else:
        env["SCRIPT_NAME"] = ""
    if env.get("HTTPS", "").lower() in ("on", "1", "true"):
        env["wsgi.url_scheme"] = "https"
    else:
        env["wsgi.url_scheme"] = env.get("UWSGI_SCHEME") or env.get("REQUEST_SCHEME") or "http"
    env.update(static)
    return 0


_prctl = None
