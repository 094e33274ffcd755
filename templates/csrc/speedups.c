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
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

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

/* Interned strings used on every request. */
static PyObject *s_UWSGI_PYHOME, *s_UWSGI_HOME, *s_UWSGI_CHDIR, *s_UWSGI_SCRIPT, *s_UWSGI_MODULE,
    *s_UWSGI_CALLABLE, *s_UWSGI_FILE, *s_UWSGI_SETENV, *s_UWSGI_POSTFILE, *s_HTTP_CONTENT_LENGTH,
    *s_HTTP_CONTENT_TYPE, *s_SCRIPT_NAME, *s_PATH_INFO, *s_HTTPS, *s_UWSGI_SCHEME, *s_REQUEST_SCHEME,
    *s_url_scheme, *s_empty, *s_http, *s_https, *s_colon, *s_REQUEST_METHOD;

static int intern_all(void) {
#define I(name, text) if (!(name = PyUnicode_InternFromString(text))) return -1;
    I(s_UWSGI_PYHOME, "UWSGI_PYHOME") I(s_UWSGI_HOME, "UWSGI_HOME") I(s_UWSGI_CHDIR, "UWSGI_CHDIR")
    I(s_UWSGI_SCRIPT, "UWSGI_SCRIPT") I(s_UWSGI_MODULE, "UWSGI_MODULE") I(s_UWSGI_CALLABLE, "UWSGI_CALLABLE")
    I(s_UWSGI_FILE, "UWSGI_FILE") I(s_UWSGI_SETENV, "UWSGI_SETENV") I(s_UWSGI_POSTFILE, "UWSGI_POSTFILE")
    I(s_HTTP_CONTENT_LENGTH, "HTTP_CONTENT_LENGTH") I(s_HTTP_CONTENT_TYPE, "HTTP_CONTENT_TYPE")
    I(s_SCRIPT_NAME, "SCRIPT_NAME") I(s_PATH_INFO, "PATH_INFO") I(s_HTTPS, "HTTPS")
    I(s_UWSGI_SCHEME, "UWSGI_SCHEME") I(s_REQUEST_SCHEME, "REQUEST_SCHEME") I(s_url_scheme, "wsgi.url_scheme")
    I(s_empty, "") I(s_http, "http") I(s_https, "https") I(s_colon, ":") I(s_REQUEST_METHOD, "REQUEST_METHOD")
#undef I
    return 0;
}

/* get returns a borrowed reference to env[key], or NULL when absent. */
static PyObject *get(PyObject *env, PyObject *key) { return PyDict_GetItem(env, key); }

static int str_eq(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (!a || !b) return 0;
    return PyUnicode_Compare(a, b) == 0;
}

static int nonempty(PyObject *o) { return o && PyUnicode_GetLength(o) > 0; }

/* is_on: HTTPS is "on", "1" or "true", in any case (worker.py: .lower()). */
static int is_on(PyObject *o) {
    char buf[5];
    Py_ssize_t n = PyUnicode_GetLength(o);
    if (n < 1 || n > 4) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_ReadChar(o, i);
        if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
        if (c > 127) return 0;
        buf[i] = (char)c;
    }
    buf[n] = 0;
    return strcmp(buf, "on") == 0 || strcmp(buf, "1") == 0 || strcmp(buf, "true") == 0;
}

/*
 * finish_environ(env, key, static) prepares a parsed environ for the app,
 * as worker.py's Worker.serve and call_app do:
 *   returns 1 when the request names another app than key (a tuple
 *   (pyhome, chdir, script); None in single-app mode), 2 when it carries a
 *   var that loads code or files (UWSGI_FILE, UWSGI_SETENV, UWSGI_POSTFILE),
 *   0 when env is ready: HTTP_CONTENT_LENGTH/TYPE dropped, SCRIPT_NAME
 *   stripped from PATH_INFO, wsgi.url_scheme set, static keys merged.
 */
static PyObject *finish_environ(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *env, *key, *stat;
    if (!PyArg_ParseTuple(args, "O!OO!", &PyDict_Type, &env, &key, &PyDict_Type, &stat))
        return NULL;
    if (key != Py_None) {
        if (!PyTuple_Check(key) || PyTuple_Size(key) != 3) {
            PyErr_SetString(PyExc_TypeError, "key must be a 3-tuple");
            return NULL;
        }
        PyObject *pyhome = get(env, s_UWSGI_PYHOME);
        if (!nonempty(pyhome)) pyhome = get(env, s_UWSGI_HOME);
        if (!pyhome) pyhome = s_empty;
        PyObject *chdir = get(env, s_UWSGI_CHDIR);
        if (!chdir) chdir = s_empty;
        PyObject *script = get(env, s_UWSGI_SCRIPT), *joined = NULL;
        if (!script) {
            PyObject *mod = get(env, s_UWSGI_MODULE), *cal = get(env, s_UWSGI_CALLABLE);
            if (nonempty(mod) && nonempty(cal)) {
                PyObject *t = PyUnicode_Concat(mod, s_colon);
                if (!t) return NULL;
                joined = PyUnicode_Concat(t, cal);
                Py_DECREF(t);
                if (!joined) return NULL;
                script = joined;
            } else {
                script = mod ? mod : s_empty;
            }
        }
        int same = str_eq(pyhome, PyTuple_GetItem(key, 0)) && str_eq(chdir, PyTuple_GetItem(key, 1)) &&
                   str_eq(script, PyTuple_GetItem(key, 2));
        Py_XDECREF(joined);
        if (!same) return PyLong_FromLong(1);
    }
    if (get(env, s_UWSGI_FILE) || get(env, s_UWSGI_SETENV) || get(env, s_UWSGI_POSTFILE))
        return PyLong_FromLong(2);
    if (get(env, s_HTTP_CONTENT_LENGTH) && PyDict_DelItem(env, s_HTTP_CONTENT_LENGTH) < 0) return NULL;
    if (get(env, s_HTTP_CONTENT_TYPE) && PyDict_DelItem(env, s_HTTP_CONTENT_TYPE) < 0) return NULL;
    PyObject *pi = get(env, s_PATH_INFO);
    if (!pi) {
        if (PyDict_SetItem(env, s_PATH_INFO, s_empty) < 0) return NULL;
        pi = s_empty;
    }
    PyObject *sn = get(env, s_SCRIPT_NAME);
    if (nonempty(sn)) {
        Py_ssize_t n = PyUnicode_GetLength(sn);
        while (n > 0 && PyUnicode_ReadChar(sn, n - 1) == '/') n--;
        PyObject *snc = PyUnicode_Substring(sn, 0, n);
        if (!snc) return NULL;
        Py_ssize_t pn = PyUnicode_GetLength(pi);
        if (pn >= n && PyUnicode_Tailmatch(pi, snc, 0, n, -1) == 1 &&
            (pn == n || PyUnicode_ReadChar(pi, n) == '/')) {
            PyObject *rest = PyUnicode_Substring(pi, n, pn);
            if (!rest || PyDict_SetItem(env, s_PATH_INFO, rest) < 0) {
                Py_XDECREF(rest);
                Py_DECREF(snc);
                return NULL;
            }
            Py_DECREF(rest);
        }
        int rc = PyDict_SetItem(env, s_SCRIPT_NAME, snc);
        Py_DECREF(snc);
        if (rc < 0) return NULL;
    } else if (PyDict_SetItem(env, s_SCRIPT_NAME, s_empty) < 0) {
        return NULL;
    }
    PyObject *scheme = s_http, *https = get(env, s_HTTPS);
    if (https && is_on(https)) {
        scheme = s_https;
    } else {
        PyObject *u = get(env, s_UWSGI_SCHEME);
        if (!nonempty(u)) u = get(env, s_REQUEST_SCHEME);
        if (nonempty(u)) scheme = u;
    }
    if (PyDict_SetItem(env, s_url_scheme, scheme) < 0) return NULL;
    if (PyDict_Update(env, stat) < 0) return NULL;
    return PyLong_FromLong(0);
}

/* append appends a str as latin-1 bytes (PEP 3333: headers are latin-1). */
static int append(char **buf, Py_ssize_t *len, Py_ssize_t *cap, PyObject *str) {
    if (!PyUnicode_Check(str)) {
        PyErr_SetString(PyExc_TypeError, "status and headers must be str");
        return -1;
    }
    PyObject *b = PyUnicode_AsLatin1String(str);
    if (!b) return -1;
    char *data;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(b, &data, &n) < 0) {
        Py_DECREF(b);
        return -1;
    }
    if (*len + n > *cap) {
        Py_ssize_t ncap = (*len + n) * 2;
        char *nb = PyMem_Realloc(*buf, ncap);
        if (!nb) {
            Py_DECREF(b);
            PyErr_NoMemory();
            return -1;
        }
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    Py_DECREF(b);
    return 0;
}

static int append_c(char **buf, Py_ssize_t *len, Py_ssize_t *cap, const char *s) {
    PyObject *o = PyUnicode_FromString(s);
    if (!o) return -1;
    int rc = append(buf, len, cap, o);
    Py_DECREF(o);
    return rc;
}

static int write_all(int fd, const char *p, Py_ssize_t n) {
    while (n > 0) {
        ssize_t w;
        Py_BEGIN_ALLOW_THREADS
        w = write(fd, p, (size_t)n);
        Py_END_ALLOW_THREADS
        if (w < 0) {
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return -1;
                continue;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        p += w;
        n -= w;
    }
    return 0;
}

/*
 * send_response(fd, proto, status, headers, body) writes a whole response:
 * the status line, the headers, Content-Length when the app gave none, and
 * the body, in one write when it fits. Returns (head bytes, header count).
 * worker.py's send_headers does the same in Python.
 */
static PyObject *send_response(PyObject *self, PyObject *args) {
    (void)self;
    int fd;
    PyObject *proto, *status, *headers;
    const char *body;
    Py_ssize_t blen;
    if (!PyArg_ParseTuple(args, "iUUOy#", &fd, &proto, &status, &headers, &body, &blen))
        return NULL;
    PyObject *seq = PySequence_Fast(headers, "headers must be a list of (name, value) tuples");
    if (!seq) return NULL;
    Py_ssize_t cap = 512 + blen, len = 0, nh = PySequence_Size(seq);
    char *buf = PyMem_Malloc(cap);
    if (!buf) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    int has_cl = 0;
    if (append(&buf, &len, &cap, proto) < 0 || append_c(&buf, &len, &cap, " ") < 0 ||
        append(&buf, &len, &cap, status) < 0 || append_c(&buf, &len, &cap, "\r\n") < 0)
        goto error;
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *h = PySequence_GetItem(seq, i);
        if (!h) goto error;
        PyObject *k = NULL, *v = NULL;
        if (PyTuple_Check(h) && PyTuple_Size(h) == 2) {
            k = PyTuple_GetItem(h, 0);
            v = PyTuple_GetItem(h, 1);
        }
        if (!k || !v) {
            Py_DECREF(h);
            PyErr_SetString(PyExc_TypeError, "each header must be a (name, value) tuple");
            goto error;
        }
        if (!has_cl && PyUnicode_Check(k) && PyUnicode_GetLength(k) == 14) {
            PyObject *low = PyObject_CallMethod(k, "lower", NULL);
            if (!low) {
                Py_DECREF(h);
                goto error;
            }
            has_cl = PyUnicode_CompareWithASCIIString(low, "content-length") == 0;
            Py_DECREF(low);
        }
        int rc = append(&buf, &len, &cap, k) < 0 || append_c(&buf, &len, &cap, ": ") < 0 ||
                 append(&buf, &len, &cap, v) < 0 || append_c(&buf, &len, &cap, "\r\n") < 0;
        Py_DECREF(h);
        if (rc) goto error;
    }
    if (!has_cl) {
        char cl[64];
        snprintf(cl, sizeof cl, "Content-Length: %zd\r\n", blen);
        if (append_c(&buf, &len, &cap, cl) < 0) goto error;
        nh++;
    }
    if (append_c(&buf, &len, &cap, "\r\n") < 0) goto error;
    Py_ssize_t head = len;
    if (len + blen > cap) {
        char *nb = PyMem_Realloc(buf, len + blen);
        if (!nb) {
            PyErr_NoMemory();
            goto error;
        }
        buf = nb;
    }
    memcpy(buf + len, body, blen);
    len += blen;
    if (write_all(fd, buf, len) < 0) goto error;
    PyMem_Free(buf);
    Py_DECREF(seq);
    return Py_BuildValue("(nn)", head, nh);
error:
    PyMem_Free(buf);
    Py_DECREF(seq);
    return NULL;
}

/*
 * The worker's slot in the scoreboard (uwsgictl/pool/scoreboard.go has the
 * layout): written on every request, so in C, through this process's own
 * mapping of the shared memory. Only this worker writes its slot.
 */
static unsigned char *sb_base;
static Py_ssize_t sb_len;

enum { SLOT_SIZE = 256, REQ_OFF = 64, REQ_LEN = 64, HIST_OFF = 128, HIST_BUCKETS = 32, ST_IDLE = 1, ST_BUSY = 2 };

static void put32(unsigned char *p, unsigned long v) {
    p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}

static void put64(unsigned char *p, unsigned long long v) {
    int i;
    for (i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned long get32(const unsigned char *p) {
    return (unsigned long)p[0] | (unsigned long)p[1] << 8 | (unsigned long)p[2] << 16 | (unsigned long)p[3] << 24;
}

static unsigned char *slot_at(Py_ssize_t off) {
    if (!sb_base || off < 0 || off + SLOT_SIZE > sb_len) {
        PyErr_SetString(PyExc_ValueError, "scoreboard slot out of range");
        return NULL;
    }
    return sb_base + off;
}

/* sb_map(fd, size): map the scoreboard for the sb_* writers. */
static PyObject *sb_map(PyObject *self, PyObject *args) {
    (void)self;
    int fd;
    Py_ssize_t size;
    void *p;
    if (!PyArg_ParseTuple(args, "in", &fd, &size)) return NULL;
    p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return PyErr_SetFromErrno(PyExc_OSError);
    sb_base = p;
    sb_len = size;
    Py_RETURN_NONE;
}

/* sb_begin(off, pid, start_ns): the worker is busy with a request (not
 * yet known: sb_request names it once the vars are read). */
static PyObject *sb_begin(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off;
    unsigned long pid;
    unsigned long long start;
    unsigned char *s;
    if (!PyArg_ParseTuple(args, "nkK", &off, &pid, &start)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    put32(s, pid);
    put32(s + 4, ST_BUSY);
    put64(s + 8, start);
    memset(s + REQ_OFF, 0, REQ_LEN); /* not the last request's, while this one is read */
    Py_RETURN_NONE;
}

/* sb_request(off, env): "METHOD /path" of the request in progress (no
 * query string: it can carry secrets), latin-1, cut or NUL-padded. */
static PyObject *sb_request(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off, n = 0;
    PyObject *env, *parts[2];
    unsigned char *s, *req;
    int i;
    if (!PyArg_ParseTuple(args, "nO", &off, &env)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    req = s + REQ_OFF;
    parts[0] = get(env, s_REQUEST_METHOD);
    parts[1] = get(env, s_PATH_INFO);
    for (i = 0; i < 2; i++) {
        Py_ssize_t len, j;
        if (i == 1 && n < REQ_LEN) req[n++] = ' ';
        if (!parts[i] || !PyUnicode_Check(parts[i])) continue;
        len = PyUnicode_GetLength(parts[i]);
        for (j = 0; j < len && n < REQ_LEN; j++) {
            Py_UCS4 c = PyUnicode_ReadChar(parts[i], j);
            req[n++] = c < 256 ? (unsigned char)c : '?';
        }
    }
    memset(req + n, 0, REQ_LEN - n);
    Py_RETURN_NONE;
}

/* sb_finish(off, pid, requests, total_ns, errors, tx, forwarded, dur_ns):
 * the worker is idle again; dur_ns < 0 means no latency to count. */
static PyObject *sb_finish(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off;
    unsigned long pid;
    unsigned long long requests, total, errors, tx, forwarded;
    long long dur;
    struct timespec now;
    unsigned char *s;
    if (!PyArg_ParseTuple(args, "nkKKKKKL", &off, &pid, &requests, &total, &errors, &tx, &forwarded, &dur)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    clock_gettime(CLOCK_REALTIME, &now);
    put32(s, pid);
    put32(s + 4, ST_IDLE);
    put64(s + 8, 0);
    put64(s + 16, requests);
    put64(s + 24, total);
    put64(s + 32, errors);
    put64(s + 40, (unsigned long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    put64(s + 48, tx);
    put64(s + 56, forwarded);
    if (dur >= 0) {
        unsigned long long us = (unsigned long long)dur / 1000;
        int b = 0;
        while (us) { b++; us >>= 1; }
        if (b >= HIST_BUCKETS) b = HIST_BUCKETS - 1;
        put32(s + HIST_OFF + 4 * b, (get32(s + HIST_OFF + 4 * b) + 1) & 0xFFFFFFFFUL);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"send_response", send_response, METH_VARARGS, "send_response(fd, proto, status, headers, body) -> (head bytes, header count)"},
    {"parse_vars", parse_vars, METH_VARARGS, "parse_vars(data, end) -> dict or None"},
    {"finish_environ", finish_environ, METH_VARARGS, "finish_environ(env, key, static) -> 0 ready, 1 another app, 2 refused"},
    {"sb_map", sb_map, METH_VARARGS, "sb_map(fd, size): map the scoreboard for the sb_* writers"},
    {"sb_begin", sb_begin, METH_VARARGS, "sb_begin(off, pid, start_ns)"},
    {"sb_request", sb_request, METH_VARARGS, "sb_request(off, env)"},
    {"sb_finish", sb_finish, METH_VARARGS, "sb_finish(off, pid, requests, total_ns, errors, tx, forwarded, dur_ns)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pyvhost_speedups", NULL, -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pyvhost_speedups(void) {
    if (intern_all() < 0) return NULL;
    return PyModule_Create(&module);
}
