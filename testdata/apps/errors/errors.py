"""PEP 3333's error paths: /raise raises before start_response, /excinfo
replaces its status with start_response(..., exc_info), /after raises after
the headers went out, /nostart never calls start_response, /empty returns
an empty iterable."""
import sys


def application(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/raise":
        raise RuntimeError("boom before start_response")
    if path == "/excinfo":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"replaced\n"]
    if path == "/after":
        def gen():
            yield b"partial "
            raise RuntimeError("boom after the headers")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()
    if path == "/nostart":
        return [b"no status"]
    if path == "/empty":
        start_response("204 No Content", [])
        return iter(())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]
