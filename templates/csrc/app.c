/* Part of speedups.c, which includes it (one translation unit).
 * Calling the app: the C path's state (hot_init), run_app and respond. */

/*
 * The request path. hot_init hands over the worker's app and helpers once;
 * accept_serve and serve then answer requests without running any of
 * worker.py's code unless something unusual happens.
 */
static struct {
    PyObject *app, *key, *stat, *start_cb, *empty_input, *input_cls, *file_wrapper, *report, *error_page,
        *send_file;
    Responder *resp;
    Py_ssize_t buffer_size, max_vars, slot_off, app_num;
    unsigned long pid;
    unsigned long long max_requests, grace_ns;
    int stop, logging, log_fd;
    char *log_prefix; /* the app's name and a space, before each request line ("" = none) */
    Py_ssize_t log_prefix_len;
    unsigned char *buf;
    Py_ssize_t bufcap;
} H;

static PyObject *hot_init(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"app", "key", "static", "responder", "empty_input", "input_cls", "file_wrapper",
                            "client_gone", "report", "error_page", "send_file", "buffer_size", "max_vars",
                            "slot_off", "pid", "max_requests", "logging", "log_prefix", "app_num", "log_fd",
                            "timeout_ms", "grace_ms", NULL};
    PyObject *o[11];
    Py_ssize_t bs, mv, off, app_num;
    unsigned long pid;
    unsigned long long maxr;
    int logging, log_fd, timeout_ms, grace_ms;
    const char *prefix;
    Py_ssize_t prefix_len;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO!O!OOOOOOOnnnkKpy#niii", names, &o[0], &o[1], &PyDict_Type, &o[2],
                                     ResponderType, &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &o[10],
                                     &bs, &mv, &off, &pid, &maxr, &logging, &prefix, &prefix_len, &app_num, &log_fd,
                                     &timeout_ms, &grace_ms))
        return NULL;
    if (!slot_at(off)) return NULL;
    for (int i = 0; i < 11; i++) Py_INCREF(o[i]);
    H.app = o[0];
    H.key = o[1];
    H.stat = o[2];
    H.resp = (Responder *)o[3];
    H.empty_input = o[4];
    H.input_cls = o[5];
    H.file_wrapper = o[6];
    ClientGone = o[7];
    H.report = o[8];
    H.error_page = o[9];
    H.send_file = o[10];
    H.logging = logging;
    if (!(H.log_prefix = PyMem_Malloc(prefix_len + 1))) return PyErr_NoMemory();
    memcpy(H.log_prefix, prefix, prefix_len);
    H.log_prefix_len = prefix_len;
    H.app_num = app_num;
    H.log_fd = log_fd;
    io_timeout_ms = timeout_ms;
    H.grace_ns = (unsigned long long)grace_ms * 1000000ULL;
    if (!(H.start_cb = PyObject_GetAttrString(o[3], "start_response"))) return NULL;
    H.buffer_size = bs;
    H.max_vars = mv;
    H.slot_off = off;
    H.pid = pid;
    H.max_requests = maxr;
    /* room for the largest vars block plus a handed-off request's bytes */
    H.bufcap = 4 + 65535 + 65536 + 8192;
    if (!(H.buf = PyMem_Malloc(H.bufcap))) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* request_stop: a stop signal came; accept_serve returns after this request. */
static PyObject *request_stop(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    H.stop = 1;
    Py_RETURN_NONE;
}

/* report(what, exc) through worker.py, which formats the traceback; the
 * exception is the one pending. */
static void report_pending(const char *what) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb && v) PyException_SetTraceback(v, tb);
    PyObject *r = PyObject_CallFunction(H.report, "sO", what, v ? v : Py_None);
    if (!r) PyErr_Clear(); /* the log itself failed: nothing better to do */
    Py_XDECREF(r);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
}

static int status_code(PyObject *status) {
    if (!status || !PyUnicode_Check(status) || PyUnicode_GetLength(status) < 3) return -1;
    int code = 0;
    for (int i = 0; i < 3; i++) {
        Py_UCS4 c = PyUnicode_ReadChar(status, i);
        if (c < '0' || c > '9') return -1;
        code = code * 10 + (int)(c - '0');
    }
    return code;
}

/* respond sends the app's result; 0, or -1 with the exception set. */
static int respond(Responder *r, PyObject *result) {
    if ((PyList_CheckExact(result) || PyTuple_CheckExact(result)) && !r->sent) {
        Py_ssize_t n = PySequence_Size(result);
        PyObject *body;
        if (n == 1) {
            body = PySequence_GetItem(result, 0);
        } else {
            PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
            if (!empty) return -1;
            body = PyObject_CallMethod(empty, "join", "(O)", result);
            Py_DECREF(empty);
        }
        if (!body) return -1;
        char *p;
        Py_ssize_t len;
        int rc = bytes_of(body, &p, &len) < 0 || send_head(r, p, len, len) < 0 ? -1 : 0;
        if (rc == 0) r->nbytes += len;
        Py_DECREF(body);
        return rc;
    }
    int fw = PyObject_IsInstance(result, H.file_wrapper);
    if (fw < 0) return -1;
    if (fw && !r->sent) {
        PyObject *fl = PyObject_GetAttr(result, s_filelike);
        if (!fl) return -1;
        int has = PyObject_HasAttr(fl, s_fileno);
        Py_DECREF(fl);
        if (has) {
            PyObject *x = PyObject_CallFunction(H.send_file, "iOO", r->conn, result, (PyObject *)r);
            Py_XDECREF(x);
            return x ? 0 : -1;
        }
    }
    PyObject *it = PyObject_GetIter(result), *chunk;
    if (!it) return -1;
    while ((chunk = PyIter_Next(it))) {
        int t = PyObject_IsTrue(chunk);
        int rc = t < 0 ? -1 : t ? responder_write(r, chunk) : 0;
        Py_DECREF(chunk);
        if (rc < 0) {
            Py_DECREF(it);
            return -1;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return -1;
    if (!r->sent) return send_head(r, "", 0, 0);
    return 0;
}

/* abort_conn makes close() reset the connection (TCP), so a response cut
 * short shows as an error to nginx and the client, not as a short body. */
static void abort_conn(int conn) {
    struct linger l = {1, 0};
    (void)setsockopt(conn, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/* run_app calls the app and answers; returns the status code, or -2 with
 * a BaseException (SystemExit...) pending that must end the worker. */
static int run_app(int conn, PyObject *env, const char *body, Py_ssize_t blen) {
    Responder *r = H.resp;
    PyObject *proto = get(env, s_SERVER_PROTOCOL), *inp, *result = NULL;
    if (!nonempty(proto)) proto = s_http10;
    Py_INCREF(proto);
    responder_reset(r, conn, proto);
    PyObject *cl = get(env, s_CONTENT_LENGTH);
    if (nonempty(cl) && PyUnicode_CompareWithASCIIString(cl, "0") != 0) {
        /* worker.py's Input.length_of decides (one rule for both paths) */
        PyObject *num = PyObject_CallMethod(H.input_cls, "length_of", "O", cl);
        Py_ssize_t length = num ? PyLong_AsSsize_t(num) : -1;
        Py_XDECREF(num);
        if (length < 0) {
            if (PyErr_Occurred()) report_pending("CONTENT_LENGTH");
            PyObject *x = PyObject_CallFunction(H.error_page, "iiO", conn, 400, proto);
            Py_XDECREF(x);
            PyErr_Clear();
            Py_DECREF(proto);
            return 400;
        }
        inp = PyObject_CallFunction(H.input_cls, "iy#n", conn, body, blen, length);
    } else {
        inp = H.empty_input;
        Py_INCREF(inp);
    }
    int code = 500, fatal = 0, aborted = 0;
    if (!inp || PyDict_SetItem(env, s_wsgi_input, inp) < 0) goto failed;
    result = PyObject_CallFunctionObjArgs(H.app, env, H.start_cb, NULL);
    if (result && respond(r, result) == 0) {
        code = status_code(r->status);
        if (code < 0) PyErr_Format(PyExc_ValueError, "invalid status %R", r->status);
    }
failed:
    if (PyErr_Occurred()) {
        if (ClientGone && PyErr_ExceptionMatches(ClientGone)) {
            PyErr_Clear();
            code = r->status != Py_None ? status_code(r->status) : 499;
            if (code < 0) code = 499;
        } else if (PyErr_ExceptionMatches(PyExc_Exception)) {
            if (!r->sent) {
                report_pending("raised");
                PyObject *x = PyObject_CallFunction(H.error_page, "iiO", conn, 500, proto);
                if (!x) PyErr_Clear();
                Py_XDECREF(x);
            } else {
                /* Too late for a 500: the client must see the response cut,
                 * not a short body that looks whole. */
                report_pending("raised mid-response (the connection is aborted)");
                abort_conn(conn);
                aborted = 1;
            }
            code = 500;
        } else {
            fatal = 1;
        }
    }
    if (result) {
        /* close() always, also when a SystemExit is on its way out */
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        if (PyObject_HasAttr(result, s_close)) {
            PyObject *x = PyObject_CallMethodObjArgs(result, s_close, NULL);
            if (!x) report_pending("close() raised");
            Py_XDECREF(x);
        }
        PyErr_Restore(t, v, tb);
        Py_DECREF(result);
    }
    if (!fatal && !aborted && inp && inp != H.empty_input) {
        PyObject *x = PyObject_CallMethodObjArgs(inp, s_drain, NULL);
        if (!x) {
            if (PyErr_ExceptionMatches(PyExc_OSError)) PyErr_Clear();
            else report_pending("request failed");
        }
        Py_XDECREF(x);
    }
    Py_XDECREF(inp);
    Py_DECREF(proto);
    return fatal ? -2 : code;
}
