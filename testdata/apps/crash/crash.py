"""/crash kills the worker outright (os._exit); anything else answers."""
import os


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/crash":
        os._exit(7)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"alive %d\n" % os.getpid()]
