/*
 * _pyvhost_speedups: the worker's hot loop in C, optional.
 *
 * parse_vars(data, end) decodes a uwsgi vars block into the WSGI environ
 * dict: keys and values are latin-1 str (PEP 3333), keys interned because
 * nginx sends the same ones on every request. It returns None for a
 * malformed block (a length that runs past the end, or an empty key).
 *
 * Built against the limited API (abi3) of Python 3.8, so one build serves
 * every interpreter from 3.8 on; the daemon compiles it at start when a C
 * compiler and Python's headers are there, and the worker falls back to
 * pure Python otherwise. Keep the semantics identical to worker.py's
 * parse loop.
 */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x03080000
#include <Python.h>

static PyObject *parse_vars(PyObject *self, PyObject *args) {
    (void)self;
    const unsigned char *b;
    Py_ssize_t len, end, pos = 4;
    if (!PyArg_ParseTuple(args, "y#n", (const char **)&b, &len, &end))
        return NULL;
    if (end > len || end < 4)
        Py_RETURN_NONE;
    PyObject *env = PyDict_New();
    if (!env)
        return NULL;
    while (pos < end) {
        if (pos + 2 > end)
            goto malformed;
        Py_ssize_t kl = b[pos] | (b[pos + 1] << 8);
        Py_ssize_t k0 = pos + 2, q = k0 + kl;
        if (kl == 0 || q + 2 > end)
            goto malformed;
        Py_ssize_t vl = b[q] | (b[q + 1] << 8);
        Py_ssize_t v0 = q + 2, r = v0 + vl;
        if (r > end)
            goto malformed;
        PyObject *k = PyUnicode_DecodeLatin1((const char *)b + k0, kl, NULL);
        if (!k)
            goto error;
        PyUnicode_InternInPlace(&k);
        PyObject *v = PyUnicode_DecodeLatin1((const char *)b + v0, vl, NULL);
        if (!v) {
            Py_DECREF(k);
            goto error;
        }
        int rc = PyDict_SetItem(env, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0)
            goto error;
        pos = r;
    }
    return env;
malformed:
    Py_DECREF(env);
    Py_RETURN_NONE;
error:
    Py_DECREF(env);
    return NULL;
}

static PyMethodDef methods[] = {
    {"parse_vars", parse_vars, METH_VARARGS, "parse_vars(data, end) -> dict or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pyvhost_speedups", NULL, -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pyvhost_speedups(void) { return PyModule_Create(&module); }
