"""Large bodies both ways: POST /upload streams wsgi.input in chunks and
reports the size and checksum; GET /download?mb=N streams N megabytes;
GET /file serves a file through wsgi.file_wrapper; GET /write uses the
write() callable."""
import hashlib
import os
import tempfile
from urllib.parse import parse_qs

CHUNK = b"0123456789abcdef" * 4096  # 64 KiB


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/upload":
        h = hashlib.sha256()
        n = 0
        inp = environ["wsgi.input"]
        while True:
            chunk = inp.read(1 << 16)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        body = ("%d %s\n" % (n, h.hexdigest())).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/download":
        mb = int(qs.get("mb", ["1"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (CHUNK for _ in range(mb * 16))
    if path == "/file":
        f = tempfile.TemporaryFile()
        f.write(b"file-wrapper " * 10000)
        f.seek(0)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f, 8192)
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"then returned\n"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
