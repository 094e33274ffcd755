/* Part of speedups.c, which includes it (one translation unit).
 * Ready, exchange.py's twin: what an ASGI receive or send that needs no
 * wait returns, in place of a coroutine. */

/* Ready: an awaitable whose result is already there; also a coroutine
 * (send, throw, close) so an app may hand it to create_task. */
typedef struct {
    PyObject_HEAD
    PyObject *value; /* NULL: None */
} Ready;

static PyTypeObject *ReadyType;
static PyObject *DONE; /* Ready(None), what send returns */

static PyObject *ready_new(PyObject *value) {
    Ready *r = PyObject_New(Ready, ReadyType);
    if (!r) return NULL;
    r->value = value; /* steals */
    return (PyObject *)r;
}

static PyObject *Ready_next(Ready *r) {
    if (r->value) { /* StopIteration(value), built so a tuple value stays whole */
        PyObject *e = PyObject_CallFunctionObjArgs(PyExc_StopIteration, r->value, NULL);
        if (e) {
            PyErr_SetObject(PyExc_StopIteration, e);
            Py_DECREF(e);
        }
    }
    return NULL; /* no exception set: StopIteration with None */
}

static PyObject *Ready_send(Ready *r, PyObject *arg) {
    (void)arg;
    if (!r->value) PyErr_SetNone(PyExc_StopIteration);
    return Ready_next(r);
}

static PyObject *Ready_throw(Ready *r, PyObject *args) {
    (void)r;
    PyObject *typ, *val = NULL, *tb = NULL;
    if (!PyArg_UnpackTuple(args, "throw", 1, 3, &typ, &val, &tb)) return NULL;
    PyObject *exc = val && val != Py_None ? val : typ;
    if (PyObject_IsInstance(exc, PyExc_BaseException) == 1)
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    else if (PyType_Check(exc) && PyObject_IsSubclass(exc, PyExc_BaseException) == 1)
        PyErr_SetNone(exc);
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
    return NULL;
}

static PyObject *Ready_close(Ready *r, PyObject *arg) {
    (void)r;
    (void)arg;
    Py_RETURN_NONE;
}

static PyObject *Ready_self(PyObject *r) {
    Py_INCREF(r);
    return r;
}

static PyObject *Ready_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    (void)tp;
    static char *names[] = {"value", NULL};
    PyObject *value = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:Ready", names, &value)) return NULL;
    if (value == Py_None) value = NULL;
    Py_XINCREF(value);
    return ready_new(value);
}

static void Ready_dealloc(Ready *r) {
    Py_XDECREF(r->value);
    PyTypeObject *tp = Py_TYPE(r);
    PyObject_Free(r);
    Py_DECREF(tp);
}

static PyMethodDef ready_methods[] = {
    {"send", (PyCFunction)Ready_send, METH_O, "send(value): raises StopIteration with the result"},
    {"throw", (PyCFunction)Ready_throw, METH_VARARGS, "throw(type[, value[, tb]]): raises it"},
    {"close", (PyCFunction)Ready_close, METH_NOARGS, "close(): nothing to do"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ready_slots[] = {
    {Py_am_await, Ready_self},
    {Py_tp_iter, Ready_self},
    {Py_tp_iternext, Ready_next},
    {Py_tp_methods, ready_methods},
    {Py_tp_new, Ready_new},
    {Py_tp_dealloc, Ready_dealloc},
    {Py_tp_doc, "Ready: an awaitable whose result is already there"},
    {0, NULL},
};

static PyType_Spec ready_spec = {"_pyvhost_speedups.Ready", sizeof(Ready), 0, Py_TPFLAGS_DEFAULT, ready_slots};

