/* Part of speedups.c, which includes it (one translation unit).
 * One connection from accept() to close(): serve and accept_serve. */

static void close_conn(int conn) {
    /* close() is not retried on EINTR: on Linux the fd is gone either way */
    close(conn);
}

/* serve_conn answers one accepted connection: Py_None when done (the
 * connection closed, the scoreboard updated), (data, start) when
 * worker.py must go on with the bytes read so far (the connection still
 * open), NULL with the exception that must end the worker. */
static PyObject *serve_conn(int conn, const char *prefix, Py_ssize_t plen, int from_shared) {
    unsigned long long start = now_ns(CLOCK_MONOTONIC);
    unsigned char *s = sb_base + H.slot_off, *b = H.buf;
    Py_ssize_t n = plen, end = 0;
    int code = -1;
    slot_begin(s, H.pid, start);
    if (plen > H.bufcap) goto slow_prefix;
    if (plen) memcpy(b, prefix, plen);
    for (;;) {
        if (n >= 4 && !end) {
            Py_ssize_t size = b[1] | (b[2] << 8);
            if (size > H.buffer_size || b[0] != 0) goto slow;
            end = 4 + size;
        }
        if (end && n >= end) break;
        ssize_t got;
        Py_BEGIN_ALLOW_THREADS
        got = read(conn, b + n, (size_t)(H.bufcap - n));
        Py_END_ALLOW_THREADS
        if (got == 0) goto done; /* the client went away mid-packet */
        if (got < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) goto fatal;
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
                if (ready < 0) goto fatal;
                if (ready) continue;
                goto slow;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            report_pending("request failed");
            goto done;
        }
        n += got;
    }
    PyObject *env = parse_block(b, end);
    if (!env) {
        if (PyErr_Occurred()) goto fatal;
        goto slow;
    }
    Py_ssize_t nvars = PyDict_Size(env);
    if (nvars > H.max_vars) {
        Py_DECREF(env);
        goto slow;
    }
    slot_request(s, env);
    int rc = environ_ready(env, H.key, H.stat);
    if (rc != 0) {
        Py_DECREF(env);
        if (rc < 0) goto fatal;
        goto slow;
    }
    if (from_shared && H.key != Py_None) put64(sb_base + SB_SHARED_NS, start);
    code = run_app(conn, env, (const char *)b + end, n - end);
    if (code == -2) {
        Py_DECREF(env);
        goto fatal;
    }
    slot_count(s, 1, code >= 500, (unsigned long long)H.resp->nbytes, 0);
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
slow:
    return Py_BuildValue("(y#K)", (const char *)b, n, start);
slow_prefix:
    return Py_BuildValue("(y#K)", prefix, plen, start);
}

/* serve(conn, prefix, from_shared): answer a connection already accepted
 * (one the daemon handed over, with the bytes it read). */
static PyObject *serve(PyObject *self, PyObject *args) {
    (void)self;
    int conn, from_shared;
    const char *prefix;
    Py_ssize_t plen;
    if (!PyArg_ParseTuple(args, "iy#p", &conn, &prefix, &plen, &from_shared)) return NULL;
    if (!H.buf) {
        PyErr_SetString(PyExc_RuntimeError, "hot_init first");
        return NULL;
    }
    return serve_conn(conn, prefix, plen, from_shared);
}

/* accept_serve(fd, from_shared, budget): accept and answer connections
 * until none is waiting, budget is spent or the worker must stop. Returns
 * None, or (conn, data, start) for a request worker.py must finish. */
static PyObject *accept_serve(PyObject *self, PyObject *args) {
    (void)self;
    int fd, from_shared, budget;
    if (!PyArg_ParseTuple(args, "ipi", &fd, &from_shared, &budget)) return NULL;
    if (!H.buf) {
        PyErr_SetString(PyExc_RuntimeError, "hot_init first");
        return NULL;
    }
    unsigned char *s = sb_base + H.slot_off;
    for (int i = 0; i < budget && !H.stop; i++) {
        if (H.max_requests && get64(s + SB_REQUESTS) >= H.max_requests) break;
        int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); /* reads and writes wait with a deadline */
        if (conn < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == ECONNABORTED) continue;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return NULL;
                continue;
            }
            return PyErr_SetFromErrno(PyExc_OSError);
        }
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
