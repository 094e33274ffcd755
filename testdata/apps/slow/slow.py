"""Sleeps for ?s=SECONDS (default 5) before answering: for harakiri tests."""
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    secs = float(parse_qs(environ.get("QUERY_STRING", "")).get("s", ["5"])[0])
    time.sleep(secs)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept %g\n" % secs]
