"""Ways for a request to go wrong, for the fault suite: /crash kills the
worker outright (os._exit(7)); /exit/N is os._exit(N), /sysexit/N is
sys.exit(N); /slow/S answers after S seconds; /spawn starts a background
`sleep` and answers its pid; /inject sends a header that would split the
response, /hop a hop-by-hop header; /closestderr closes fd 2 and raises;
anything else answers with the worker's pid."""
import os
import subprocess
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
    if path == "/spawn":
        child = subprocess.Popen(["sleep", "60"], close_fds=False, start_new_session=True)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d\n" % child.pid]
    if path == "/inject":
        start_response("200 OK", [("X-A", "ok\r\nSet-Cookie: evil=1")])
        return [b"x"]
    if path == "/hop":
        start_response("200 OK", [("Connection", "evil")])
        return [b"x"]
    if path == "/closestderr":
        os.close(2)
        raise RuntimeError("raised after closing fd 2")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"alive %d\n" % os.getpid()]
