/*
 * _pyvhost_speedups: the worker's request path in C, optional.
 *
 * The common request (no body or a Content-Length body, the app's own
 * vars, a list, tuple or iterable response) is served here from accept()
 * to close(): accept_serve() takes connections off a listening socket
 * until none is waiting, and serve() answers one connection already
 * accepted. Anything unusual (a malformed or oversized packet, another
 * app's request, a refused var) goes back to the Python worker (templates/worker/pyvhost_worker/) with the bytes
 * already read, and worker.py's Python path (the twin of this file, used
 * whole when no C compiler is there) finishes it. The pieces are also
 * callable one by one, for worker.py's slow path and for the differential
 * test (testdata/worker_selftest.py).
 *
 * This file is the module; the parts it includes below each do one job
 * (one translation unit, so their helpers stay static).
 *
 * Built against the limited API (abi3) of Python 3.8, so one build serves
 * every interpreter from 3.8 on; the daemon compiles it at start when a C
 * compiler and Python's headers are there, and the worker falls back to
 * pure Python otherwise. Keep the semantics identical to worker.py's.
 */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x03080000
#include <Python.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <structmember.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h" /* written by the daemon from uwsgictl/pool/protocol.go */

/* The parts, in dependency order; each is one job. */
#include "environ.c"    /* vars block -> environ dict; which app; refused vars */
#include "respond.c"    /* Responder: start_response, write, status line and headers */
#include "scoreboard.c" /* the worker's slot in the shared scoreboard */
#include "app.c"        /* calling the app and sending what it returns */
#include "logline.c"    /* the request's log line */
#include "request.c"    /* accept() to close() */
#include "asgi.c"       /* ASGI: the scope, the response head */
#include "ready.c"      /* ASGI: an awaitable whose result is there */
#include "exchange.c"   /* ASGI: one request's receive and send that need no wait */

/* die_with_parent(): the kernel kills this worker when its zygote dies. */
static PyObject *die_with_parent(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"die_with_parent", die_with_parent, METH_NOARGS, "die_with_parent(): SIGKILL this process when its parent dies"},
    {"hot_init", (PyCFunction)(void (*)(void))hot_init, METH_VARARGS | METH_KEYWORDS,
     "hot_init(app=, key=, static=, responder=, ...): hand the worker's app and helpers to the C path"},
    {"accept_serve", accept_serve, METH_VARARGS,
     "accept_serve(fd, from_shared, budget) -> None, or (conn, data, start) for worker.py to finish"},
    {"serve", serve, METH_VARARGS, "serve(conn, prefix, from_shared) -> None, or (data, start) for worker.py to finish"},
    {"request_stop", request_stop, METH_NOARGS, "request_stop(): accept_serve returns after the request in hand"},
    {"asgi_accept", asgi_accept, METH_VARARGS,
     "asgi_accept(fd, from_shared) -> None, or (conn, body, start, env, nvars, pktsize); env None: take() goes on"},
    {"asgi_take", asgi_take, METH_VARARGS, "asgi_take(conn, prefix, from_shared): asgi_accept's answer for a handed-over connection"},
    {"asgi_init", (PyCFunction)(void (*)(void))asgi_init, METH_VARARGS | METH_KEYWORDS,
     "asgi_init(spec=, versions=, reasons=, client_gone=, body_chunk=): asgi.py's constants"},
    {"asgi_scope", asgi_scope, METH_VARARGS, "asgi_scope(env, kind, state) -> the ASGI scope"},
    {"head_lines", head_lines, METH_VARARGS, "head_lines(proto, status, headers) -> (head, has_cl)"},
    {"parse_vars", parse_vars, METH_VARARGS, "parse_vars(data, end) -> dict or None"},
    {"finish_environ", finish_environ, METH_VARARGS, "finish_environ(env, key, static) -> 0 ready, 1 another app, 2 refused"},
    {"sb_map", sb_map, METH_VARARGS, "sb_map(fd, size): map the scoreboard for the sb_* writers"},
    {"sb_begin", sb_begin, METH_VARARGS, "sb_begin(off, pid, start_ns)"},
    {"sb_request", sb_request, METH_VARARGS, "sb_request(off, env)"},
    {"sb_count", sb_count, METH_VARARGS, "sb_count(off, requests, errors, tx, forwarded): add to the counters"},
    {"sb_served", sb_served, METH_VARARGS, "sb_served(off) -> requests answered"},
    {"sb_finish", sb_finish, METH_VARARGS, "sb_finish(off, pid, dur_ns)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pyvhost_speedups", NULL, -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pyvhost_speedups(void) {
    if (intern_all() < 0) return NULL;
    find_runtime_helpers();
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    ResponderType = (PyTypeObject *)PyType_FromSpec(&responder_spec);
    if (!ResponderType || PyModule_AddObject(m, "Responder", (PyObject *)ResponderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(ResponderType); /* PyModule_AddObject took one reference; hot_init's type check keeps using it */
    if (exchange_types(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
