"""Ways for a request to end its worker: /crash kills it outright
(os._exit(7)); /exit/N is os._exit(N), /sysexit/N is sys.exit(N); /slow/S
answers after S seconds; anything else answers with the worker's pid."""
import os
import sys
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/crash":
        os._exit(7)
    if path.startswith("/exit/"):
        os._exit(int(path[6:]))
    if path.startswith("/sysexit/"):
        sys.exit(int(path[9:]))
    if path.startswith("/slow/"):
        time.sleep(float(path[6:]))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"alive %d\n" % os.getpid()]
