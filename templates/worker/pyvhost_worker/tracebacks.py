# Tracebacks that start at the user's code: the frames of pyvhost's own
# worker (and of the import machinery) before the app's first frame are
# dropped, in every exception of a chain. The worker formats with it, and
# the deploy's preflight (deployer/preflight.go runs this file's text with
# loadapp.py's). Standard library only, no relative import.

import os
import sys


def _own():
    """Where pyvhost's frames come from: this package and the worker's
    __main__.py, or the preflight's `python -c` script."""
    try:
        here = os.path.dirname(os.path.abspath(__file__))
    except NameError:  # run as the preflight's script text
        return ("<string>",), ()
    return (here + os.sep,), (os.path.join(os.path.dirname(here), "__main__.py"),)


_OWN_PREFIXES, _OWN_FILES = _own()


def _skippable(filename):
    return filename.startswith(_OWN_PREFIXES) or filename in _OWN_FILES or filename.startswith("<frozen importlib")


def _trim(te, keep_own, seen):
    """Drop te's leading frames that are not the user's. When none is the
    user's (a SyntaxError, a missing module, no callable: the message says
    it all) it shows none, unless keep_own (pyvhost's own failure)."""
    while te is not None and id(te) not in seen:
        seen.add(id(te))
        frames = list(te.stack)
        i = 0
        while i < len(frames) and _skippable(frames[i].filename):
            i += 1
        if i == len(frames) and keep_own:
            i = 0
        if i:
            te.stack = te.stack.__class__.from_list(frames[i:])
        _trim(te.__cause__, keep_own, seen)
        te = te.__context__


def user_traceback(exc=None, keep_own=False):
    """exc (default: the one being handled) formatted as Python prints it,
    starting at the user's code; keep_own keeps pyvhost's frames when there
    is nothing else (a failure of pyvhost's own)."""
    import traceback
    if exc is None:
        exc = sys.exc_info()[1]
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    _trim(te, keep_own, set())
    return "".join(te.format())
