"""Takes 1.5 s to import, like a big app: requests arriving meanwhile wait
in the daemon's bounded queue."""
import time

time.sleep(1.5)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"imported\n"]
