"""pyvhost's worker: runs one Python web app for the pyvhost uwsgi daemon.

The daemon (Go) starts it once per app, under the app's own interpreter
(PYHOME/bin/python) and user. This first process, the app's "zygote"
(zygote.py), imports the app once and forks workers from it on the
daemon's command, so the app's memory is shared copy-on-write. Workers
(worker.py) accept connections on the app's sockets themselves: the daemon
stays off the per-request path. A request for another app (on a socket
shared by every app) is handed to the daemon with the bytes already read,
and the daemon hands it on to that app's workers.

Standard library only; Python 3.8+. The common WSGI request is answered by
the C speedups (templates/csrc/speedups.c) from accept() to close() when
the daemon could build them; the Python code is then the slow path
(refusals, other apps' requests) and, without them, the whole request
path: the two are kept identical by testdata/worker_selftest.py.

The parts: common (configuration, protocol constants, log), conn (a
connection's deadlines), uwsgi (the vars block), wsgi (PEP 3333),
scoreboard (the slot the daemon reads), worker (the accept loop), zygote,
loadapp (how an app is found: shared with the deploy's preflight import).
"""
