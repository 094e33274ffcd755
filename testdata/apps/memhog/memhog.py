"""/hog?mb=N allocates N megabytes; under --limit-as it gets MemoryError."""
from urllib.parse import parse_qs


def application(environ, start_response):
    mb = int(parse_qs(environ.get("QUERY_STRING", "")).get("mb", ["0"])[0])
    block = bytearray(mb << 20)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"allocated %d MB\n" % (len(block) >> 20)]
