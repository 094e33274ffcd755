/* Part of speedups.c, which includes it (one translation unit).
 * The response: the Responder type (start_response, write, headers). */

/*
 * The response: Responder is WSGI's start_response and write() for one
 * worker, reset per request (begin), so nothing is made per request. It is
 * wsgi.py's Response class in C (same attributes and methods), used by
 * the C path and, when the speedups are loaded, by the worker's slow path.
 */
typedef struct {
    PyObject_HEAD
    int conn;
    char sent; /* T_BOOL is a char */
    PyObject *proto, *status, *headers, *write_cb;
    Py_ssize_t nbytes, hsize, hcount;
} Responder;

/* SETREF replaces a reference held in a field (Py_XSETREF is not in the limited API). */
#define SETREF(field, value) do { PyObject *old_ = (PyObject *)(field); (field) = (value); Py_XDECREF(old_); } while (0)
/* SETREF_INC: the field takes a new reference to value. */
#define SETREF_INC(field, value) do { Py_INCREF(value); SETREF(field, value); } while (0)

static PyObject *ClientGone; /* conn.py's ClientGone, set by hot_init */

/* The head under construction: status line and headers, latin-1. */
static char *hbuf;
static Py_ssize_t hcap;

static int hreserve(Py_ssize_t need) {
    if (need <= hcap) return 0;
    Py_ssize_t ncap = need < 4096 ? 4096 : need * 2;
    char *nb = PyMem_Realloc(hbuf, ncap);
    if (!nb) {
        PyErr_NoMemory();
        return -1;
    }
    hbuf = nb;
    hcap = ncap;
    return 0;
}

/* happend appends a str as latin-1 (PEP 3333: status and headers are). */
static int happend(Py_ssize_t *len, PyObject *str) {
    if (!PyUnicode_Check(str)) {
        PyErr_SetString(PyExc_TypeError, "status and headers must be str");
        return -1;
    }
    Py_ssize_t n = PyUnicode_GetLength(str);
    if (n < 0 || hreserve(*len + n) < 0) return -1;
    if (latin1_into(hbuf + *len, str, n, n, 0) == n) {
        *len += n;
        return 0;
    }
    /* not latin-1 (or the copy failed): the codec copies it or raises its error */
    PyObject *b = PyUnicode_AsLatin1String(str);
    if (!b) return -1;
    char *data;
    Py_ssize_t bn;
    int rc = PyBytes_AsStringAndSize(b, &data, &bn);
    if (rc == 0) {
        memcpy(hbuf + *len, data, bn); /* bn == n: one latin-1 byte per char */
        *len += bn;
    }
    Py_DECREF(b);
    return rc;
}

static int happend_c(Py_ssize_t *len, const char *s, Py_ssize_t n) {
    if (hreserve(*len + n) < 0) return -1;
    memcpy(hbuf + *len, s, n);
    *len += n;
    return 0;
}

/* client_gone raises ClientGone for a peer that went away, else OSError. */
static void raise_write_error(int err) {
    if ((err == EPIPE || err == ECONNRESET || err == ETIMEDOUT) && ClientGone)
        PyErr_SetNone(ClientGone);
    else {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    }
}

static int io_timeout_ms = 4000; /* --socket-timeout, set by hot_init */

/* wait_fd waits, the GIL released, until fd is ready for events (POLLIN or
 * POLLOUT) or ms have passed: 1 ready, 0 timed out, -1 with the exception
 * set (a signal handler raised). Connections are non-blocking, so every
 * read and write of a request has a deadline (uWSGI's --socket-timeout):
 * a peer that stops sending or reading cannot hold a worker for ever. */
static int wait_fd(int fd, short events, int ms) {
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int r;
        Py_BEGIN_ALLOW_THREADS
        r = poll(&p, 1, ms);
        Py_END_ALLOW_THREADS
        if (r >= 0) return r > 0;
        if (errno != EINTR) return 1; /* let the read or write report it */
        if (PyErr_CheckSignals() < 0) return -1;
    }
}

/* send_all writes a then b (either may be empty) with writev, waiting at
 * most --socket-timeout each time the peer's window is full; a peer that
 * stops reading is a client gone. */
static int send_all(int fd, const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn) {
    while (an + bn > 0) {
        struct iovec iov[2];
        int n = 0;
        if (an) { iov[n].iov_base = (void *)a; iov[n].iov_len = (size_t)an; n++; }
        if (bn) { iov[n].iov_base = (void *)b; iov[n].iov_len = (size_t)bn; n++; }
        ssize_t w;
        Py_BEGIN_ALLOW_THREADS /* a slow client may keep it waiting: let the app's threads run */
        w = writev(fd, iov, n);
        Py_END_ALLOW_THREADS
        if (w < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return -1;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                int ready = wait_fd(fd, POLLOUT, io_timeout_ms);
                if (ready < 0) return -1;
                if (ready) continue;
                errno = ETIMEDOUT;
            }
            raise_write_error(errno);
            return -1;
        }
        if (w >= an) {
            w -= an;
            an = 0;
            a = NULL;
            b += w;
            bn -= w;
        } else {
            a += w;
            an -= w;
        }
    }
    return 0;
}

static int bytes_of(PyObject *o, char **p, Py_ssize_t *n) {
    if (!PyBytes_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "response data must be bytes");
        return -1;
    }
    return PyBytes_AsStringAndSize(o, p, n);
}

/*
 * What an app may put in its status and headers, checked as gunicorn does
 * before a byte is sent (the app gets a 500 and the log its mistake): a
 * header name is an RFC 9110 token, no value or status holds CR, LF or NUL
 * (they would split the response), and hop-by-hop headers are the
 * server's (PEP 3333). wsgi.py's check_header is the same.
 */
static int is_token_char(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *const hop_by_hop[] = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                                         "te", "trailers", "transfer-encoding", "upgrade"};

static int bad_text(const char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0') return 1;
    return 0;
}

/* check_header: 0, or -1 with ValueError naming the header and the rule. */
static int check_header(PyObject *k, const char *name, Py_ssize_t nlen, const char *value, Py_ssize_t vlen) {
    int ok = nlen > 0;
    for (Py_ssize_t i = 0; ok && i < nlen; i++) ok = is_token_char((unsigned char)name[i]);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "response header name %R is not an RFC 9110 token", k);
        return -1;
    }
    if (bad_text(value, vlen)) {
        PyErr_Format(PyExc_ValueError, "response header %R has CR, LF or NUL in its value", k);
        return -1;
    }
    for (size_t i = 0; i < sizeof hop_by_hop / sizeof *hop_by_hop; i++) {
        if ((size_t)nlen == strlen(hop_by_hop[i]) && strncasecmp(name, hop_by_hop[i], nlen) == 0) {
            PyErr_Format(PyExc_ValueError, "response header %R is hop-by-hop: PEP 3333 leaves it to the server", k);
            return -1;
        }
    }
    return 0;
}

/* send_head writes the status line, headers and Content-Length (when the
 * app gave none and content_length >= 0), then first (may be empty). */
static int send_head(Responder *r, const char *first, Py_ssize_t flen, Py_ssize_t content_length) {
    if (r->status == Py_None) {
        PyErr_SetString(PyExc_AssertionError, "the app did not call start_response");
        return -1;
    }
    Py_ssize_t len = 0, nh;
    int has_cl = 0;
    PyObject *seq = PySequence_Fast(r->headers, "headers must be a list of (name, value) tuples");
    if (!seq) return -1;
    nh = PySequence_Size(seq);
    if (happend(&len, r->proto) < 0 || happend_c(&len, " ", 1) < 0) goto error;
    Py_ssize_t s0 = len;
    if (happend(&len, r->status) < 0) goto error;
    if (bad_text(hbuf + s0, len - s0)) {
        PyErr_Format(PyExc_ValueError, "response status %R has CR, LF or NUL", r->status);
        goto error;
    }
    if (happend_c(&len, "\r\n", 2) < 0) goto error;
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *h = PySequence_GetItem(seq, i), *k = NULL, *v = NULL;
        if (!h) goto error;
        if (PyTuple_Check(h) && PyTuple_Size(h) == 2) {
            k = PyTuple_GetItem(h, 0);
            v = PyTuple_GetItem(h, 1);
            Py_XINCREF(k);
            Py_XINCREF(v);
        } else if (!PyUnicode_Check(h) && PySequence_Check(h) && PySequence_Size(h) == 2) {
            k = PySequence_GetItem(h, 0); /* a list pair: wsgi.py takes any (name, value) pair */
            v = PySequence_GetItem(h, 1);
        }
        Py_DECREF(h);
        if (!k || !v) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "each header must be a (name, value) pair");
            goto error;
        }
        Py_ssize_t k0 = len, v0;
        int bad = happend(&len, k) < 0;
        if (!bad && !has_cl && len - k0 == 14 && strncasecmp(hbuf + k0, "content-length", 14) == 0) has_cl = 1;
        Py_ssize_t k1 = len;
        bad = bad || happend_c(&len, ": ", 2) < 0;
        v0 = len;
        bad = bad || happend(&len, v) < 0 || check_header(k, hbuf + k0, k1 - k0, hbuf + v0, len - v0) < 0 ||
              happend_c(&len, "\r\n", 2) < 0;
        Py_DECREF(k);
        Py_DECREF(v);
        if (bad) goto error;
    }
    Py_DECREF(seq);
    seq = NULL;
    if (!has_cl && content_length >= 0) {
        char cl[64];
        int n = snprintf(cl, sizeof cl, "Content-Length: %zd\r\n", content_length);
        if (happend_c(&len, cl, n) < 0) goto error;
        nh++;
    }
    if (happend_c(&len, "\r\n", 2) < 0) goto error;
    r->sent = 1;
    r->hsize = len;
    r->hcount = nh;
    return send_all(r->conn, hbuf, len, first, flen);
error:
    Py_XDECREF(seq);
    return -1;
}

static void responder_reset(Responder *r, int conn, PyObject *proto) {
    r->conn = conn;
    SETREF_INC(r->proto, proto);
    SETREF_INC(r->status, Py_None);
    SETREF_INC(r->headers, Py_None);
    r->sent = 0;
    r->nbytes = r->hsize = r->hcount = 0;
}

static PyObject *Responder_begin(Responder *r, PyObject *args) {
    int conn;
    PyObject *proto;
    if (!PyArg_ParseTuple(args, "iU", &conn, &proto)) return NULL;
    responder_reset(r, conn, proto);
    Py_RETURN_NONE;
}

static PyObject *Responder_start_response(Responder *r, PyObject *args, PyObject *kw) {
    static char *names[] = {"status", "headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:start_response", names, &status, &headers, &exc_info))
        return NULL;
    if (exc_info != Py_None && PyObject_IsTrue(exc_info)) {
        if (r->sent) {
            /* PEP 3333: too late to change the response; re-raise */
            PyObject *t = PySequence_GetItem(exc_info, 0), *v = PySequence_GetItem(exc_info, 1),
                     *tb = PySequence_GetItem(exc_info, 2);
            if (!t || !v || !tb) {
                Py_XDECREF(t); Py_XDECREF(v); Py_XDECREF(tb);
                return NULL;
            }
            if (tb == Py_None) {
                Py_DECREF(tb);
                tb = NULL;
            }
            PyErr_Restore(t, v, tb);
            return NULL;
        }
    } else if (r->status != Py_None) {
        PyErr_SetString(PyExc_AssertionError, "start_response called twice without exc_info");
        return NULL;
    }
    SETREF_INC(r->status, status);
    SETREF_INC(r->headers, headers);
    if (!r->write_cb && !(r->write_cb = PyObject_GetAttrString((PyObject *)r, "write"))) return NULL;
    Py_INCREF(r->write_cb);
    return r->write_cb;
}

static int responder_write(Responder *r, PyObject *data) {
    char *p;
    Py_ssize_t n;
    if (bytes_of(data, &p, &n) < 0) return -1;
    if (!r->sent) {
        if (send_head(r, p, n, -1) < 0) return -1;
    } else if (n && send_all(r->conn, NULL, 0, p, n) < 0) {
        return -1;
    }
    r->nbytes += n;
    return 0;
}

static PyObject *Responder_write(Responder *r, PyObject *data) {
    if (responder_write(r, data) < 0) return NULL;
    Py_RETURN_NONE;
}

/* send_headers(first_chunk, content_length or None), as wsgi.py's. */
static PyObject *Responder_send_headers(Responder *r, PyObject *args) {
    PyObject *first, *cl;
    char *p;
    Py_ssize_t n, length = -1;
    if (!PyArg_ParseTuple(args, "OO", &first, &cl)) return NULL;
    if (bytes_of(first, &p, &n) < 0) return NULL;
    if (cl != Py_None && (length = PyLong_AsSsize_t(cl)) < 0 && PyErr_Occurred()) return NULL;
    if (send_head(r, p, n, length) < 0) return NULL;
    Py_RETURN_NONE;
}

static void Responder_dealloc(Responder *r) {
    Py_XDECREF(r->proto);
    Py_XDECREF(r->status);
    Py_XDECREF(r->headers);
    Py_XDECREF(r->write_cb);
    PyTypeObject *tp = Py_TYPE(r);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(r);
    Py_DECREF(tp);
}

static PyObject *Responder_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    (void)args;
    (void)kw;
    Responder *r = (Responder *)((allocfunc)PyType_GetSlot(tp, Py_tp_alloc))(tp, 0);
    if (!r) return NULL;
    r->conn = -1;
    responder_reset(r, -1, s_http10);
    return (PyObject *)r;
}

static PyMethodDef responder_methods[] = {
    {"begin", (PyCFunction)Responder_begin, METH_VARARGS, "begin(conn, proto): a new response"},
    {"start_response", (PyCFunction)(void (*)(void))Responder_start_response, METH_VARARGS | METH_KEYWORDS,
     "WSGI start_response(status, headers, exc_info=None)"},
    {"write", (PyCFunction)Responder_write, METH_O, "WSGI write(data)"},
    {"send_headers", (PyCFunction)Responder_send_headers, METH_VARARGS, "send_headers(first_chunk, content_length)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef responder_members[] = {
    {"conn", T_INT, offsetof(Responder, conn), 0, NULL},
    {"sent", T_BOOL, offsetof(Responder, sent), 0, NULL},
    {"proto", T_OBJECT, offsetof(Responder, proto), READONLY, NULL},
    {"status", T_OBJECT, offsetof(Responder, status), READONLY, NULL},
    {"headers", T_OBJECT, offsetof(Responder, headers), READONLY, NULL},
    {"nbytes", T_PYSSIZET, offsetof(Responder, nbytes), 0, NULL},
    {"hsize", T_PYSSIZET, offsetof(Responder, hsize), 0, NULL},
    {"hcount", T_PYSSIZET, offsetof(Responder, hcount), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot responder_slots[] = {
    {Py_tp_new, Responder_new},
    {Py_tp_dealloc, Responder_dealloc},
    {Py_tp_methods, responder_methods},
    {Py_tp_members, responder_members},
    {Py_tp_doc, "Responder: one worker's WSGI start_response and write(), reset per request"},
    {0, NULL},
};

static PyType_Spec responder_spec = {
    "_pyvhost_speedups.Responder", sizeof(Responder), 0, Py_TPFLAGS_DEFAULT, responder_slots,
};

static PyTypeObject *ResponderType;
