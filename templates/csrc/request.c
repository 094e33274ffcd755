/* Part of speedups.c, which includes it (one translation unit).
 * One connection from accept() to close(): serve and accept_serve. */

/* hot_ready: whether hot_init has run (else RuntimeError is set). */
static int hot_ready(void) {
    if (!H.buf) PyErr_SetString(PyExc_RuntimeError, "hot_init first");
    return H.buf != NULL;
}

static void close_conn(int conn) {
    /* close() is not retried on EINTR: on Linux the fd is gone either way */
    close(conn);
}

/* What read_request found. */
enum { RQ_FATAL = -1, RQ_GONE = 0, RQ_READY = 1, RQ_SLOW = 2 };

/* read_request reads and checks one connection's packet into H.buf (n
 * bytes, the vars ending at end) and makes its environ: RQ_READY with
 * *env set (from *nvars vars); RQ_GONE when the client went away mid-packet (or a read
 * failed, reported); RQ_SLOW when worker.py must go on with the bytes read
 * (a malformed, oversized or slow packet, another app's request, a refused
 * var); RQ_FATAL with the exception that must end the worker. */
static int read_request(int conn, unsigned long long start, Py_ssize_t *np, Py_ssize_t *endp, PyObject **env,
                        Py_ssize_t *nvars) {
    unsigned char *b = H.buf;
    Py_ssize_t n = *np, end = 0;
    for (;;) {
        if (n >= 4 && !end) {
            Py_ssize_t size = b[1] | (b[2] << 8);
            if (size > H.buffer_size || b[0] != 0) break;
            end = 4 + size;
        }
        if (end && n >= end) break;
        ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        got = read(conn, b + n, (size_t)(H.bufcap - n));
        Py_END_ALLOW_THREADS
        if (got == 0) return RQ_GONE; /* the client went away mid-packet */
        if (got < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return RQ_FATAL;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* The vars are not all there yet. nginx sends them right
                 * after connecting, so wait a moment; past it, worker.py
                 * hands the connection to the daemon, which waits for the
                 * rest without a worker (an idle peer must not hold one). */
                unsigned long long now = now_ns(CLOCK_MONOTONIC);
                int ready = 0;
                if (now < start + H.grace_ns) ready = wait_fd(conn, POLLIN, (int)((start + H.grace_ns - now) / 1000000ULL) + 1);
                if (ready < 0) return RQ_FATAL;
                if (ready) continue;
                break;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            report_pending("request failed");
            return RQ_GONE;
        }
        n += got;
    }
    *np = n;
    *endp = end;
    if (!end || n < end) return RQ_SLOW;
    PyObject *e = parse_block(b, end);
    if (!e) return PyErr_Occurred() ? RQ_FATAL : RQ_SLOW;
    *nvars = PyDict_Size(e);
    int rc = *nvars > H.max_vars ? 1 : environ_ready(e, H.key, H.stat);
    if (rc != 0) {
        Py_DECREF(e);
        return rc < 0 ? RQ_FATAL : RQ_SLOW;
    }
    *env = e;
    return RQ_READY;
}

/* serve_conn answers one accepted connection: Py_None when done (the
 * connection closed, the scoreboard updated), (data, start) when
 * worker.py must go on with the bytes read so far (the connection still
 * open), NULL with the exception that must end the worker. */
static PyObject *serve_conn(int conn, const char *prefix, Py_ssize_t plen, int from_shared) {
    unsigned long long start = now_ns(CLOCK_MONOTONIC);
    unsigned char *s = sb_base + H.slot_off;
    Py_ssize_t n = plen, end = 0, nvars = 0;
    PyObject *env = NULL;
    int code = -1;
    slot_begin(s, H.pid, start);
    if (plen > H.bufcap) return Py_BuildValue("(y#K)", prefix, plen, start);
    if (plen) memcpy(H.buf, prefix, plen);
    switch (read_request(conn, start, &n, &end, &env, &nvars)) {
    case RQ_FATAL:
        goto fatal;
    case RQ_GONE:
        goto done;
    case RQ_SLOW:
        return Py_BuildValue("(y#K)", (const char *)H.buf, n, start);
    }
    slot_request(s, env);
    if (from_shared && H.key != Py_None) put64(sb_base + SB_SHARED_NS, start);
    code = run_app(conn, env, (const char *)H.buf + end, n - end);
    if (code == -2) {
        Py_DECREF(env);
        goto fatal;
    }
    slot_count(s, 1, code >= 500, (unsigned long long)H.resp->nbytes, 0, code);
    if (H.logging) log_request(env, code, start, nvars, end - 4);
    Py_DECREF(env);
done:
    close_conn(conn);
    slot_finish(s, H.pid, code >= 0 ? (long long)(now_ns(CLOCK_MONOTONIC) - start) : -1);
    Py_RETURN_NONE;
fatal:
    /* The app's sys.exit() (or the like) ends the worker in this request:
     * its slot stays busy with it, for the daemon's log. */
    close_conn(conn);
    return NULL;
}

/* accept_conn accepts a connection, non-blocking (its reads and writes
 * wait with a deadline): its fd, NONE_WAITING, or -1 with the exception. */
enum { NONE_WAITING = -2 };
static int accept_conn(int fd) {
    for (;;) {
        int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn >= 0) return conn;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return NONE_WAITING;
        if (errno == ECONNABORTED) continue;
        if (errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (PyErr_CheckSignals() < 0) return -1;
    }
}

/* conn_args parses (conn, prefix, from_shared), what serve and asgi_take
 * take: 0, or -1 with the exception (also when hot_init has not run). */
static int conn_args(PyObject *args, int *conn, const char **prefix, Py_ssize_t *plen, int *from_shared) {
    if (!PyArg_ParseTuple(args, "iy#p", conn, prefix, plen, from_shared)) return -1;
    return hot_ready() ? 0 : -1;
}

/* serve(conn, prefix, from_shared): answer a connection already accepted
 * (one the daemon handed over, with the bytes it read). */
static PyObject *serve(PyObject *self, PyObject *args) {
    (void)self;
    int conn, from_shared;
    const char *prefix;
    Py_ssize_t plen;
    if (conn_args(args, &conn, &prefix, &plen, &from_shared) < 0) return NULL;
    return serve_conn(conn, prefix, plen, from_shared);
}

/* accept_serve(fd, from_shared, budget): accept and answer connections
 * until none is waiting, budget is spent or the worker must stop. Returns
 * None, or (conn, data, start) for a request worker.py must finish. */
static PyObject *accept_serve(PyObject *self, PyObject *args) {
    (void)self;
    int fd, from_shared, budget;
    if (!PyArg_ParseTuple(args, "ipi", &fd, &from_shared, &budget)) return NULL;
    if (!hot_ready()) return NULL;
    unsigned char *s = sb_base + H.slot_off;
    for (int i = 0; i < budget && !H.stop; i++) {
        if (H.max_requests && get64(s + SB_REQUESTS) >= H.max_requests) break;
        int conn = accept_conn(fd);
        if (conn == NONE_WAITING) break;
        if (conn < 0) return NULL;
        PyObject *r = serve_conn(conn, NULL, 0, from_shared);
        if (!r) return NULL;
        if (r != Py_None) {
            PyObject *t = Py_BuildValue("(iOO)", conn, PyTuple_GetItem(r, 0), PyTuple_GetItem(r, 1));
            Py_DECREF(r);
            return t;
        }
        Py_DECREF(r);
        if (PyErr_CheckSignals() < 0) return NULL;
    }
    Py_RETURN_NONE;
}

/* take_conn reads one ASGI connection's request (prefix: the bytes the
 * daemon read of it): (conn, body, start, env, nvars, pktsize), or, env
 * None, (conn, data, start, None, 0, 0) for asgiworker.py's take() to go
 * on with what was read; None when the client went away (closed here). */
static PyObject *take_conn(int conn, const char *prefix, Py_ssize_t plen, int from_shared) {
    unsigned long long start = now_ns(CLOCK_MONOTONIC);
    Py_ssize_t n = plen, end = 0, nvars = 0;
    PyObject *env = NULL;
    if (plen > H.bufcap) return Py_BuildValue("(iy#KOii)", conn, prefix, plen, start, Py_None, 0, 0);
    if (plen) memcpy(H.buf, prefix, plen);
    switch (read_request(conn, start, &n, &end, &env, &nvars)) {
    case RQ_FATAL:
        close_conn(conn);
        return NULL;
    case RQ_GONE:
        close_conn(conn);
        Py_RETURN_NONE;
    case RQ_SLOW:
        return Py_BuildValue("(iy#KOii)", conn, (const char *)H.buf, n, start, Py_None, 0, 0);
    }
    slot_request(sb_base + H.slot_off, env);
    if (from_shared && H.key != Py_None) put64(sb_base + SB_SHARED_NS, start);
    return Py_BuildValue("(iy#KNnn)", conn, (const char *)H.buf + end, n - end, start, env, nvars, end - 4);
}

/* asgi_accept(fd, from_shared): accept a connection and read its request
 * (take_conn's answer); None when no connection waits. */
static PyObject *asgi_accept(PyObject *self, PyObject *args) {
    (void)self;
    int fd, from_shared;
    if (!PyArg_ParseTuple(args, "ip", &fd, &from_shared)) return NULL;
    if (!hot_ready()) return NULL;
    for (;;) {
        int conn = accept_conn(fd);
        if (conn == NONE_WAITING) Py_RETURN_NONE;
        if (conn < 0) return NULL;
        PyObject *r = take_conn(conn, NULL, 0, from_shared);
        if (r != Py_None) return r;
        Py_DECREF(r); /* that client went away: the next */
    }
}

/* asgi_take(conn, prefix, from_shared): take_conn for a connection the
 * daemon handed over with the bytes it read. */
static PyObject *asgi_take(PyObject *self, PyObject *args) {
    (void)self;
    int conn, from_shared;
    const char *prefix;
    Py_ssize_t plen;
    if (conn_args(args, &conn, &prefix, &plen, &from_shared) < 0) return NULL;
    return take_conn(conn, prefix, plen, from_shared);
}
