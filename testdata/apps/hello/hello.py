"""The smallest WSGI app: used by tests, the demo and the benchmarks."""


def application(environ, start_response):
    body = b"Hello from pyvhost's hello app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
