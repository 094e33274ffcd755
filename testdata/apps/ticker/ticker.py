"""An app with a background thread, as apps with schedulers or metrics
flushers have: it counts milliseconds while the worker waits. The response
is the count, so a test can tell whether the thread ran while the worker
was blocked on a slow client (the worker must not hold the GIL then)."""
import threading
import time

ticks = 0


def _tick():
    global ticks
    while True:
        time.sleep(0.001)
        ticks += 1


_started = False


def application(environ, start_response):
    global _started
    if not _started:  # in the worker, not in the zygote: threads do not survive fork
        _started = True
        threading.Thread(target=_tick, daemon=True).start()
    body = str(ticks).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
