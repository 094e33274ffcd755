/* Part of speedups.c, which includes it (one translation unit).
 * One ASGI HTTP request's receive and send, the halves that need no wait:
 * exchange.py's Exchange in C (the waiting halves stay HTTPRequest's
 * coroutines, which this type is the base of); they answer with a Ready. */

static PyTypeObject *ExchangeType;

/* The strs and empty values a request uses, made once (exchange_types). */
static struct {
    PyObject *s_http_request, *s_start, *s_body, *empty, *empty_bytes;
} X;

/* Exchange: the request's state, as exchange.py's (same attributes). */
typedef struct {
    PyObject_HEAD
    int fd;
    char request_done, started, finished, gone, has_cl; /* T_BOOL is a char */
    PyObject *loop, *sock, *buf, *proto, *head, *headers, *status, *entry, *disconnect;
    Py_ssize_t left, nbytes, hsize, hcount;
} Exchange;

static int Exchange_init(Exchange *x, PyObject *args, PyObject *kw) {
    static char *names[] = {"loop", "fd", "body", "length", "proto", "entry", NULL};
    PyObject *loop, *body, *proto, *entry;
    Py_ssize_t length;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OiO!nUO!", names, &loop, &x->fd, &PyBytes_Type, &body, &length,
                                     &proto, &PyList_Type, &entry))
        return -1;
    Py_ssize_t have = PyBytes_Size(body), take = length < have ? (length < 0 ? 0 : length) : have;
    PyObject *buf = take == have ? (Py_INCREF(body), body) : PyBytes_FromStringAndSize(PyBytes_AsString(body), take);
    if (!buf) return -1;
    SETREF(x->buf, buf);
    x->left = length - take;
    SETREF_INC(x->loop, loop);
    SETREF_INC(x->proto, proto);
    SETREF_INC(x->entry, entry);
    x->request_done = x->started = x->finished = x->gone = x->has_cl = 0;
    SETREF(x->head, PyBytes_FromStringAndSize("", 0));
    SETREF(x->headers, PyList_New(0));
    SETREF(x->status, PyLong_FromLong(500));
    SETREF_INC(x->sock, Py_None);
    SETREF_INC(x->disconnect, Py_None);
    x->nbytes = x->hsize = x->hcount = 0;
    return x->head && x->headers && x->status ? 0 : -1;
}

/* progress: entry[1] = now, what harakiri reads. */
static int progress(Exchange *x) {
    PyObject *now = PyLong_FromUnsignedLongLong(now_ns(CLOCK_MONOTONIC));
    return now ? PyList_SetItem(x->entry, 1, now) : -1;
}

/* receive(): the next body chunk when it is already read, else the
 * HTTPRequest's _receive coroutine (read the socket, or wait for the
 * client to go). */
static PyObject *Exchange_receive(Exchange *x, PyObject *arg) {
    (void)arg;
    Py_ssize_t have = PyBytes_Size(x->buf);
    if (x->request_done || !(have || x->left == 0)) return PyObject_CallMethod((PyObject *)x, "_receive", NULL);
    Py_ssize_t n = have < A.body_chunk ? have : A.body_chunk;
    const char *p = PyBytes_AsString(x->buf);
    PyObject *chunk = n == have ? (Py_INCREF(x->buf), x->buf) : PyBytes_FromStringAndSize(p, n);
    PyObject *rest = chunk ? PyBytes_FromStringAndSize(p + n, have - n) : NULL;
    if (!rest) {
        Py_XDECREF(chunk);
        return NULL;
    }
    SETREF(x->buf, rest);
    int more = have > n || x->left > 0;
    x->request_done = !more;
    PyObject *msg = progress(x) < 0 ? NULL : Py_BuildValue("{sOsNsO}", "type", X.s_http_request, "body", chunk,
                                                             "more_body", more ? Py_True : Py_False);
    if (!msg) return NULL;
    return ready_new(msg);
}

/* msg_get: msg.get(key, dflt) (a dict's without calling .get). */
static PyObject *msg_get(PyObject *msg, const char *key, PyObject *dflt) {
    if (PyDict_Check(msg)) {
        PyObject *v = PyDict_GetItemString(msg, key);
        v = v ? v : dflt;
        Py_INCREF(v);
        return v;
    }
    return PyObject_CallMethod(msg, "get", "sO", key, dflt);
}

static PyObject *gone_error(Exchange *x) {
    x->gone = 1;
    PyErr_SetString(A.client_gone, "the client went away");
    return NULL;
}

/* send_start: http.response.start, checked now, so the mistake's traceback
 * is the app's own line. */
static PyObject *send_start(Exchange *x, PyObject *msg) {
    if (x->started) {
        PyErr_SetString(PyExc_RuntimeError, "http.response.start sent twice");
        return NULL;
    }
    PyObject *status = PyMapping_GetItemString(msg, "status"), *h = status ? msg_get(msg, "headers", X.empty) : NULL;
    PyObject *headers = h ? PySequence_List(h) : NULL;
    Py_XDECREF(h);
    int has_cl;
    Py_ssize_t n = headers ? head_build(x->proto, status, headers, &has_cl) : -1;
    PyObject *head = n >= 0 ? PyBytes_FromStringAndSize(hbuf, n) : NULL;
    if (!head) {
        Py_XDECREF(status);
        Py_XDECREF(headers);
        return NULL;
    }
    SETREF(x->head, head);
    SETREF(x->status, status);
    SETREF(x->headers, headers);
    x->has_cl = (char)has_cl;
    x->started = 1;
    Py_INCREF(DONE);
    return DONE;
}

/* body_of: msg's body as bytes (bytearray and memoryview copied). */
static PyObject *body_of(PyObject *msg) {
    PyObject *b = msg_get(msg, "body", X.empty_bytes);
    if (!b || PyBytes_CheckExact(b)) return b;
    PyObject *out = NULL;
    if (PyBytes_Check(b) || PyByteArray_Check(b) || PyObject_IsInstance(b, (PyObject *)&PyMemoryView_Type) == 1)
        out = PyObject_Bytes(b);
    else if (!PyErr_Occurred()) {
        PyObject *tn = PyObject_GetAttrString((PyObject *)Py_TYPE(b), "__name__");
        if (tn) PyErr_Format(PyExc_TypeError, "ASGI response body must be bytes, not %S", tn);
        Py_XDECREF(tn);
    }
    Py_DECREF(b);
    return out;
}

/* write_now writes what the socket takes at once: how much, or -1 for a
 * client gone (EAGAIN is 0 written). */
static Py_ssize_t write_now(int fd, const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn) {
    struct iovec iov[2] = {{(void *)a, (size_t)an}, {(void *)b, (size_t)bn}};
    for (;;) {
        ssize_t w = writev(fd, iov, 2);
        if (w >= 0) return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        if (errno != EINTR) return -1;
    }
}

/* send_body: http.response.body, the head with the first; written at once
 * when the socket takes it, else the rest to HTTPRequest's _write. */
static PyObject *send_body(Exchange *x, PyObject *msg) {
    if (!x->started) return PyErr_Format(PyExc_RuntimeError, "http.response.body before http.response.start");
    if (x->finished) return PyErr_Format(PyExc_RuntimeError, "http.response.body after the response ended");
    PyObject *body = body_of(msg), *m = body ? msg_get(msg, "more_body", Py_False) : NULL;
    int more = m ? PyObject_IsTrue(m) : -1;
    Py_XDECREF(m);
    if (more < 0) {
        Py_XDECREF(body);
        return NULL;
    }
    char *bp = PyBytes_AsString(body), cl[64] = "\r\n";
    Py_ssize_t bn = PyBytes_Size(body), hn = 0, cn = 2;
    if (x->hsize == 0) {
        x->hcount = PyList_Size(x->headers);
        if (!x->has_cl && !more) {
            cn = snprintf(cl, sizeof cl, "Content-Length: %zd\r\n\r\n", bn);
            x->hcount++;
        }
        hn = PyBytes_Size(x->head);
        x->hsize = hn + cn;
    } else {
        cn = 0;
    }
    x->finished = !more;
    /* head, its end and the body: the head is copied to hbuf only with a body */
    Py_ssize_t w = 0, total = hn + cn + bn;
    if (hn + cn) {
        if (hreserve(hn + cn) < 0) goto error;
        memcpy(hbuf, PyBytes_AsString(x->head), hn);
        memcpy(hbuf + hn, cl, cn);
    }
    if (total && (w = write_now(x->fd, hbuf, hn + cn, bp, bn)) < 0) {
        Py_DECREF(body);
        return gone_error(x);
    }
    if (progress(x) < 0) goto error;
    if (w == total) {
        x->nbytes += bn;
        Py_DECREF(body);
        Py_INCREF(DONE);
        return DONE;
    }
    PyObject *rest = PyBytes_FromStringAndSize(NULL, total - w);
    if (!rest) goto error;
    char *r = PyBytes_AsString(rest);
    Py_ssize_t hw = w < hn + cn ? hn + cn - w : 0; /* of the head, still to write */
    memcpy(r, hbuf + (hn + cn - hw), hw);
    memcpy(r + hw, bp + (bn - (total - w - hw)), total - w - hw);
    Py_DECREF(body);
    return PyObject_CallMethod((PyObject *)x, "_write", "Nn", rest, bn);
error:
    Py_DECREF(body);
    return NULL;
}

static PyObject *Exchange_send(Exchange *x, PyObject *msg) {
    if (x->gone) {
        PyErr_SetString(A.client_gone, "the client went away");
        return NULL;
    }
    PyObject *kind = PyMapping_GetItemString(msg, "type"), *r = NULL;
    if (!kind) return NULL;
    int str = PyUnicode_Check(kind);
    if (str && str_eq(kind, X.s_start))
        r = send_start(x, msg);
    else if (str && str_eq(kind, X.s_body))
        r = send_body(x, msg);
    else
        PyErr_Format(PyExc_RuntimeError, "unexpected ASGI message %R in an HTTP request", kind);
    Py_DECREF(kind);
    return r;
}

static int Exchange_traverse(Exchange *x, visitproc visit, void *arg) {
    Py_VISIT(x->loop);
    Py_VISIT(x->sock);
    Py_VISIT(x->entry);
    Py_VISIT(x->disconnect);
    Py_VISIT(x->headers);
    Py_VISIT(Py_TYPE(x)); /* a heap type's instances hold it */
    return 0;
}

static int Exchange_clear(Exchange *x) {
    Py_CLEAR(x->loop);
    Py_CLEAR(x->sock);
    Py_CLEAR(x->buf);
    Py_CLEAR(x->proto);
    Py_CLEAR(x->head);
    Py_CLEAR(x->headers);
    Py_CLEAR(x->status);
    Py_CLEAR(x->entry);
    Py_CLEAR(x->disconnect);
    return 0;
}

static void Exchange_dealloc(Exchange *x) {
    PyObject_GC_UnTrack(x);
    Exchange_clear(x);
    PyTypeObject *tp = Py_TYPE(x);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(x);
    Py_DECREF(tp);
}

static PyMethodDef exchange_methods[] = {
    {"receive", (PyCFunction)Exchange_receive, METH_NOARGS, "ASGI receive(): an awaitable"},
    {"send", (PyCFunction)Exchange_send, METH_O, "ASGI send(message): an awaitable"},
    {NULL, NULL, 0, NULL},
};

#define OBJ(name, field) {name, T_OBJECT, offsetof(Exchange, field), 0, NULL}
#define NUM(name, type, field) {name, type, offsetof(Exchange, field), 0, NULL}
static PyMemberDef exchange_members[] = {
    NUM("fd", T_INT, fd), NUM("request_done", T_BOOL, request_done), NUM("started", T_BOOL, started),
    NUM("finished", T_BOOL, finished), NUM("gone", T_BOOL, gone), NUM("has_cl", T_BOOL, has_cl),
    OBJ("loop", loop), OBJ("_sock", sock), OBJ("buf", buf), OBJ("proto", proto), OBJ("head", head),
    OBJ("headers", headers), OBJ("status", status), OBJ("entry", entry), OBJ("disconnect", disconnect),
    NUM("left", T_PYSSIZET, left), NUM("nbytes", T_PYSSIZET, nbytes), NUM("hsize", T_PYSSIZET, hsize),
    NUM("hcount", T_PYSSIZET, hcount), {NULL, 0, 0, 0, NULL},
};
#undef OBJ
#undef NUM

static PyType_Slot exchange_slots[] = {
    {Py_tp_init, Exchange_init},
    {Py_tp_dealloc, Exchange_dealloc},
    {Py_tp_traverse, Exchange_traverse},
    {Py_tp_clear, Exchange_clear},
    {Py_tp_methods, exchange_methods},
    {Py_tp_members, exchange_members},
    {Py_tp_doc, "Exchange(loop, fd, body, length, proto, entry): one ASGI HTTP request's state, receive and send"},
    {0, NULL},
};

static PyType_Spec exchange_spec = {
    "_pyvhost_speedups.Exchange", sizeof(Exchange), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    exchange_slots,
};

/* exchange_types makes Ready and Exchange and adds them to the module. */
static int exchange_types(PyObject *m) {
#define I(name, text) if (!(X.name = PyUnicode_InternFromString(text))) return -1;
    I(s_http_request, "http.request") I(s_start, "http.response.start") I(s_body, "http.response.body")
#undef I
    if (!(X.empty = PyTuple_New(0)) || !(X.empty_bytes = PyBytes_FromStringAndSize("", 0))) return -1;
    if (!(ReadyType = (PyTypeObject *)PyType_FromSpec(&ready_spec))) return -1;
    if (!(ExchangeType = (PyTypeObject *)PyType_FromSpec(&exchange_spec))) return -1;
    if (!(DONE = ready_new(NULL))) return -1;
    Py_INCREF(ReadyType); /* PyModule_AddObject steals one; ready_new keeps using the type */
    Py_INCREF(ExchangeType);
    if (PyModule_AddObject(m, "Ready", (PyObject *)ReadyType) < 0) return -1;
    return PyModule_AddObject(m, "Exchange", (PyObject *)ExchangeType);
}
