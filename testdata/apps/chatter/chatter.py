"""Prints to stdout: GET /?kb=N prints N KiB of lines (for per-app log
rotation), then answers."""
from urllib.parse import parse_qs

LINE = "chatter " + "x" * 1015  # 1 KiB with its newline


def application(environ, start_response):
    kb = int(parse_qs(environ.get("QUERY_STRING", "")).get("kb", ["0"])[0])
    for _ in range(kb):
        print(LINE)
    print("chatter done", flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"chatter\n"]
