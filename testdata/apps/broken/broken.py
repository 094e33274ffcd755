"""Fails to import: the daemon must answer 500 and log this traceback."""
import this_module_does_not_exist  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"unreachable\n"]
