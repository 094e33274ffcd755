/*
 * _pyvhost_speedups: the worker's request path in C, optional.
 *
 * The common request (no body or a Content-Length body, the app's own
 * vars, a list, tuple or iterable response) is served here from accept()
 * to close(): accept_serve() takes connections off a listening socket
 * until none is waiting, and serve() answers one connection already
 * accepted. Anything unusual (a malformed or oversized packet, another
 * app's request, a refused var) goes back to worker.py with the bytes
 * already read, and worker.py's Python path (the twin of this file, used
 * whole when no C compiler is there) finishes it. The pieces are also
 * callable one by one, for worker.py's slow path and for the differential
 * test (testdata/worker_selftest.py):
 *
 * parse_vars(data, end) decodes a uwsgi vars block into the WSGI environ
 * dict: keys and values are latin-1 str (PEP 3333). nginx sends the same
 * keys, and mostly the same values, on every request, so both are cached
 * and reused (str is immutable). It returns None for a malformed block (a
 * length that runs past the end, or an empty key).
 *
 * Built against the limited API (abi3) of Python 3.8, so one build serves
 * every interpreter from 3.8 on; the daemon compiles it at start when a C
 * compiler and Python's headers are there, and the worker falls back to
 * pure Python otherwise. Keep the semantics identical to worker.py's.
 */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x03080000
#include <Python.h>
#include <errno.h>
#include <stdarg.h>
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

/*
 * The vars cache: a direct-mapped table from a key's bytes to its interned
 * str and the last value seen for it. A hit saves decoding (and, for the
 * key, interning) a string; a miss just replaces the entry.
 */
enum { KC_SLOTS = 128, KC_KEY = 40, KC_VAL = 80 };
typedef struct {
    unsigned short klen, vlen;
    char k[KC_KEY], v[KC_VAL];
    PyObject *key, *val;
} kc_entry;
static kc_entry kc[KC_SLOTS];

static PyObject *latin1(const unsigned char *p, Py_ssize_t n) {
    return PyUnicode_DecodeLatin1((const char *)p, n, NULL);
}

/* cached_pair returns new references to the key and value strs. */
static int cached_pair(const unsigned char *k, Py_ssize_t kl, const unsigned char *v, Py_ssize_t vl,
                       PyObject **ko, PyObject **vo) {
    unsigned h = 2166136261u;
    for (Py_ssize_t i = 0; i < kl; i++) h = (h ^ k[i]) * 16777619u;
    kc_entry *e = &kc[h & (KC_SLOTS - 1)];
    if (kl > KC_KEY) {
        PyObject *key = latin1(k, kl);
        if (!key) return -1;
        PyUnicode_InternInPlace(&key);
        PyObject *val = latin1(v, vl);
        if (!val) { Py_DECREF(key); return -1; }
        *ko = key; *vo = val;
        return 0;
    }
    if (!e->key || e->klen != kl || memcmp(e->k, k, kl) != 0) {
        PyObject *key = latin1(k, kl);
        if (!key) return -1;
        PyUnicode_InternInPlace(&key);
        Py_XDECREF(e->key);
        Py_CLEAR(e->val);
        e->key = key;
        e->klen = (unsigned short)kl;
        memcpy(e->k, k, kl);
    }
    if (e->val && e->vlen == vl && memcmp(e->v, v, vl) == 0) {
        Py_INCREF(e->val);
    } else {
        PyObject *val = latin1(v, vl);
        if (!val) return -1;
        if (vl <= KC_VAL) {
            Py_XDECREF(e->val);
            Py_INCREF(val);
            e->val = val;
            e->vlen = (unsigned short)vl;
            memcpy(e->v, v, vl);
        }
        *vo = val;
        Py_INCREF(e->key);
        *ko = e->key;
        return 0;
    }
    Py_INCREF(e->key);
    *ko = e->key;
    *vo = e->val;
    return 0;
}

/* parse_block: the environ of a vars block, or NULL; NULL without an
 * exception set means malformed. */
static PyObject *parse_block(const unsigned char *b, Py_ssize_t end) {
    Py_ssize_t pos = 4;
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
        PyObject *k, *v;
        if (cached_pair(b + k0, kl, b + v0, vl, &k, &v) < 0)
            goto error;
        int rc = PyDict_SetItem(env, k, v);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0)
            goto error;
        pos = r;
    }
    return env;
malformed:
error:
    Py_DECREF(env);
    return NULL;
}

static PyObject *parse_vars(PyObject *self, PyObject *args) {
    (void)self;
    const unsigned char *b;
    Py_ssize_t len, end;
    if (!PyArg_ParseTuple(args, "y#n", (const char **)&b, &len, &end))
        return NULL;
    if (end > len || end < 4)
        Py_RETURN_NONE;
    PyObject *env = parse_block(b, end);
    if (!env && !PyErr_Occurred())
        Py_RETURN_NONE;
    return env;
}

/* Interned strings used on every request. */
static PyObject *s_UWSGI_PYHOME, *s_UWSGI_HOME, *s_UWSGI_CHDIR, *s_UWSGI_SCRIPT, *s_UWSGI_MODULE,
    *s_UWSGI_CALLABLE, *s_UWSGI_FILE, *s_UWSGI_SETENV, *s_UWSGI_POSTFILE, *s_HTTP_CONTENT_LENGTH,
    *s_HTTP_CONTENT_TYPE, *s_SCRIPT_NAME, *s_PATH_INFO, *s_HTTPS, *s_UWSGI_SCHEME, *s_REQUEST_SCHEME,
    *s_url_scheme, *s_empty, *s_http, *s_https, *s_colon, *s_REQUEST_METHOD, *s_SERVER_PROTOCOL,
    *s_CONTENT_LENGTH, *s_wsgi_input, *s_http10, *s_close, *s_drain, *s_fileno, *s_filelike, *s_HTTP_HOST,
    *s_SERVER_NAME, *s_REMOTE_ADDR, *s_REQUEST_URI;

static int intern_all(void) {
#define I(name, text) if (!(name = PyUnicode_InternFromString(text))) return -1;
    I(s_UWSGI_PYHOME, "UWSGI_PYHOME") I(s_UWSGI_HOME, "UWSGI_HOME") I(s_UWSGI_CHDIR, "UWSGI_CHDIR")
    I(s_UWSGI_SCRIPT, "UWSGI_SCRIPT") I(s_UWSGI_MODULE, "UWSGI_MODULE") I(s_UWSGI_CALLABLE, "UWSGI_CALLABLE")
    I(s_UWSGI_FILE, "UWSGI_FILE") I(s_UWSGI_SETENV, "UWSGI_SETENV") I(s_UWSGI_POSTFILE, "UWSGI_POSTFILE")
    I(s_HTTP_CONTENT_LENGTH, "HTTP_CONTENT_LENGTH") I(s_HTTP_CONTENT_TYPE, "HTTP_CONTENT_TYPE")
    I(s_SCRIPT_NAME, "SCRIPT_NAME") I(s_PATH_INFO, "PATH_INFO") I(s_HTTPS, "HTTPS")
    I(s_UWSGI_SCHEME, "UWSGI_SCHEME") I(s_REQUEST_SCHEME, "REQUEST_SCHEME") I(s_url_scheme, "wsgi.url_scheme")
    I(s_empty, "") I(s_http, "http") I(s_https, "https") I(s_colon, ":") I(s_REQUEST_METHOD, "REQUEST_METHOD")
    I(s_SERVER_PROTOCOL, "SERVER_PROTOCOL") I(s_CONTENT_LENGTH, "CONTENT_LENGTH") I(s_wsgi_input, "wsgi.input")
    I(s_http10, "HTTP/1.0") I(s_close, "close") I(s_drain, "drain") I(s_fileno, "fileno") I(s_filelike, "filelike")
    I(s_HTTP_HOST, "HTTP_HOST") I(s_SERVER_NAME, "SERVER_NAME") I(s_REMOTE_ADDR, "REMOTE_ADDR") I(s_REQUEST_URI, "REQUEST_URI")
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
static int environ_ready(PyObject *env, PyObject *key, PyObject *stat) {
    if (key != Py_None) {
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
                if (!t) return -1;
                joined = PyUnicode_Concat(t, cal);
                Py_DECREF(t);
                if (!joined) return -1;
                script = joined;
            } else {
                script = mod ? mod : s_empty;
            }
        }
        int same = str_eq(pyhome, PyTuple_GetItem(key, 0)) && str_eq(chdir, PyTuple_GetItem(key, 1)) &&
                   str_eq(script, PyTuple_GetItem(key, 2));
        Py_XDECREF(joined);
        if (!same) return 1;
    }
    if (get(env, s_UWSGI_FILE) || get(env, s_UWSGI_SETENV) || get(env, s_UWSGI_POSTFILE))
        return 2;
    if (get(env, s_HTTP_CONTENT_LENGTH) && PyDict_DelItem(env, s_HTTP_CONTENT_LENGTH) < 0) return -1;
    if (get(env, s_HTTP_CONTENT_TYPE) && PyDict_DelItem(env, s_HTTP_CONTENT_TYPE) < 0) return -1;
    PyObject *pi = get(env, s_PATH_INFO);
    if (!pi) {
        if (PyDict_SetItem(env, s_PATH_INFO, s_empty) < 0) return -1;
        pi = s_empty;
    }
    PyObject *sn = get(env, s_SCRIPT_NAME);
    if (nonempty(sn)) {
        Py_ssize_t n = PyUnicode_GetLength(sn);
        while (n > 0 && PyUnicode_ReadChar(sn, n - 1) == '/') n--;
        PyObject *snc = PyUnicode_Substring(sn, 0, n);
        if (!snc) return -1;
        Py_ssize_t pn = PyUnicode_GetLength(pi);
        if (pn >= n && PyUnicode_Tailmatch(pi, snc, 0, n, -1) == 1 &&
            (pn == n || PyUnicode_ReadChar(pi, n) == '/')) {
            PyObject *rest = PyUnicode_Substring(pi, n, pn);
            if (!rest || PyDict_SetItem(env, s_PATH_INFO, rest) < 0) {
                Py_XDECREF(rest);
                Py_DECREF(snc);
                return -1;
            }
            Py_DECREF(rest);
        }
        int rc = PyDict_SetItem(env, s_SCRIPT_NAME, snc);
        Py_DECREF(snc);
        if (rc < 0) return -1;
    } else if (PyDict_SetItem(env, s_SCRIPT_NAME, s_empty) < 0) {
        return -1;
    }
    PyObject *scheme = s_http, *https = get(env, s_HTTPS);
    if (https && is_on(https)) {
        scheme = s_https;
    } else {
        PyObject *u = get(env, s_UWSGI_SCHEME);
        if (!nonempty(u)) u = get(env, s_REQUEST_SCHEME);
        if (nonempty(u)) scheme = u;
    }
    if (PyDict_SetItem(env, s_url_scheme, scheme) < 0) return -1;
    if (PyDict_Update(env, stat) < 0) return -1;
    return 0;
}

static PyObject *finish_environ(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *env, *key, *stat;
    if (!PyArg_ParseTuple(args, "O!OO!", &PyDict_Type, &env, &key, &PyDict_Type, &stat))
        return NULL;
    if (key != Py_None && (!PyTuple_Check(key) || PyTuple_Size(key) != 3)) {
        PyErr_SetString(PyExc_TypeError, "key must be a 3-tuple");
        return NULL;
    }
    int rc = environ_ready(env, key, stat);
    return rc < 0 ? NULL : PyLong_FromLong(rc);
}

/*
 * The response: Responder is WSGI's start_response and write() for one
 * worker, reset per request (begin), so nothing is made per request. It is
 * worker.py's Response class in C (same attributes and methods), used by
 * the C path and, when the speedups are loaded, by worker.py's slow path.
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

static PyObject *ClientGone; /* worker.py's ClientGone, set by hot_init */

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
    Py_UCS4 u[256];
    if (n <= 256) {
        if (n && !PyUnicode_AsUCS4(str, u, 256, 0)) return -1;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (u[i] > 255) goto wide;
            hbuf[*len + i] = (char)u[i];
        }
        *len += n;
        return 0;
    }
wide:;
    /* long or not latin-1: let the codec copy it, or raise its error */
    PyObject *b = PyUnicode_AsLatin1String(str);
    if (!b) return -1;
    char *data;
    Py_ssize_t bn;
    if (PyBytes_AsStringAndSize(b, &data, &bn) < 0) {
        Py_DECREF(b);
        return -1;
    }
    memcpy(hbuf + *len, data, bn);
    *len += bn;
    Py_DECREF(b);
    return 0;
}

static int happend_c(Py_ssize_t *len, const char *s, Py_ssize_t n) {
    if (hreserve(*len + n) < 0) return -1;
    memcpy(hbuf + *len, s, n);
    *len += n;
    return 0;
}

/* client_gone raises ClientGone for a peer that went away, else OSError. */
static void raise_write_error(int err) {
    if ((err == EPIPE || err == ECONNRESET) && ClientGone)
        PyErr_SetNone(ClientGone);
    else {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    }
}

/* send_all writes a then b (either may be empty) with writev. */
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
    if (happend(&len, r->proto) < 0 || happend_c(&len, " ", 1) < 0 || happend(&len, r->status) < 0 ||
        happend_c(&len, "\r\n", 2) < 0)
        goto error;
    for (Py_ssize_t i = 0; i < nh; i++) {
        PyObject *h = PySequence_GetItem(seq, i), *k = NULL, *v = NULL;
        if (!h) goto error;
        if (PyTuple_Check(h) && PyTuple_Size(h) == 2) {
            k = PyTuple_GetItem(h, 0);
            v = PyTuple_GetItem(h, 1);
            Py_XINCREF(k);
            Py_XINCREF(v);
        } else if (!PyUnicode_Check(h) && PySequence_Check(h) && PySequence_Size(h) == 2) {
            k = PySequence_GetItem(h, 0); /* a list pair: worker.py takes any (name, value) pair */
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
        Py_ssize_t k0 = len;
        int bad = happend(&len, k) < 0;
        if (!bad && !has_cl && len - k0 == 14 && strncasecmp(hbuf + k0, "content-length", 14) == 0) has_cl = 1;
        bad = bad || happend_c(&len, ": ", 2) < 0 || happend(&len, v) < 0 || happend_c(&len, "\r\n", 2) < 0;
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
    Py_INCREF(proto);
    SETREF(r->proto, proto);
    Py_INCREF(Py_None);
    SETREF(r->status, Py_None);
    Py_INCREF(Py_None);
    SETREF(r->headers, Py_None);
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
    Py_INCREF(status);
    SETREF(r->status, status);
    Py_INCREF(headers);
    SETREF(r->headers, headers);
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

/* send_headers(first_chunk, content_length or None), as worker.py's. */
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

/*
 * The worker's slot in the scoreboard (uwsgictl/pool/scoreboard.go has the
 * layout): the worker's state and its counters live there and nowhere else,
 * written on every request, so in C, through this process's own mapping of
 * the shared memory. Only this worker writes its slot.
 */
static unsigned char *sb_base;
static Py_ssize_t sb_len;

enum {
    SLOT_SIZE = 256, REQ_OFF = 64, REQ_LEN = 64, HIST_OFF = 128, HIST_BUCKETS = 32, ST_IDLE = 1, ST_BUSY = 2,
    SB_REQUESTS = 16, SB_TOTAL = 24, SB_ERRORS = 32, SB_LAST_MS = 40, SB_TX = 48, SB_FORWARDED = 56,
    SB_SHARED_NS = 8, /* app header: last request this app took on the shared socket */
};

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

static unsigned long long get64(const unsigned char *p) {
    unsigned long long v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void add64(unsigned char *p, unsigned long long d) { put64(p, get64(p) + d); }

static unsigned char *slot_at(Py_ssize_t off) {
    if (!sb_base || off < 0 || off + SLOT_SIZE > sb_len) {
        PyErr_SetString(PyExc_ValueError, "scoreboard slot out of range");
        return NULL;
    }
    return sb_base + off;
}

static unsigned long long now_ns(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_nsec;
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

static void slot_begin(unsigned char *s, unsigned long pid, unsigned long long start) {
    put32(s, pid);
    put32(s + 4, ST_BUSY);
    put64(s + 8, start);
    memset(s + REQ_OFF, 0, REQ_LEN); /* not the last request's, while this one is read */
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
    slot_begin(s, pid, start);
    Py_RETURN_NONE;
}

/* "METHOD /path" of the request in progress (no query string: it can
 * carry secrets), latin-1, cut or NUL-padded. */
static void slot_request(unsigned char *s, PyObject *env) {
    unsigned char *req = s + REQ_OFF;
    PyObject *parts[2];
    Py_ssize_t n = 0;
    int i;
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
}

static PyObject *sb_request(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off;
    PyObject *env;
    unsigned char *s;
    if (!PyArg_ParseTuple(args, "nO", &off, &env)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    slot_request(s, env);
    Py_RETURN_NONE;
}

static void slot_count(unsigned char *s, unsigned long long requests, unsigned long long errors,
                       unsigned long long tx, unsigned long long forwarded) {
    add64(s + SB_REQUESTS, requests);
    add64(s + SB_ERRORS, errors);
    add64(s + SB_TX, tx);
    add64(s + SB_FORWARDED, forwarded);
}

/* sb_count(off, requests, errors, tx, forwarded): add to the counters. */
static PyObject *sb_count(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off;
    unsigned long long requests, errors, tx, forwarded;
    unsigned char *s;
    if (!PyArg_ParseTuple(args, "nKKKK", &off, &requests, &errors, &tx, &forwarded)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    slot_count(s, requests, errors, tx, forwarded);
    Py_RETURN_NONE;
}

/* sb_served(off): the requests this worker has answered. */
static PyObject *sb_served(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off;
    unsigned char *s;
    if (!PyArg_ParseTuple(args, "n", &off)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    return PyLong_FromUnsignedLongLong(get64(s + SB_REQUESTS));
}

static void slot_finish(unsigned char *s, unsigned long pid, long long dur) {
    put32(s, pid);
    put32(s + 4, ST_IDLE);
    put64(s + 8, 0);
    put64(s + SB_LAST_MS, now_ns(CLOCK_REALTIME) / 1000000);
    if (dur >= 0) {
        unsigned long long us = (unsigned long long)dur / 1000;
        int b = 0;
        add64(s + SB_TOTAL, (unsigned long long)dur);
        while (us) { b++; us >>= 1; }
        if (b >= HIST_BUCKETS) b = HIST_BUCKETS - 1;
        put32(s + HIST_OFF + 4 * b, (get32(s + HIST_OFF + 4 * b) + 1) & 0xFFFFFFFFUL);
    }
}

/* sb_finish(off, pid, dur_ns): the worker is idle again; dur_ns < 0 means
 * no latency to count (the request went to another app). */
static PyObject *sb_finish(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off;
    unsigned long pid;
    long long dur;
    unsigned char *s;
    if (!PyArg_ParseTuple(args, "nkL", &off, &pid, &dur)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    slot_finish(s, pid, dur);
    Py_RETURN_NONE;
}

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
    unsigned long long max_requests;
    int stop, logging, vhost;
    unsigned char *buf;
    Py_ssize_t bufcap;
} H;

static PyObject *hot_init(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"app", "key", "static", "responder", "empty_input", "input_cls", "file_wrapper",
                            "client_gone", "report", "error_page", "send_file", "buffer_size", "max_vars",
                            "slot_off", "pid", "max_requests", "logging", "vhost", "app_num", NULL};
    PyObject *o[11];
    Py_ssize_t bs, mv, off, app_num;
    unsigned long pid;
    unsigned long long maxr;
    int logging, vhost;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO!O!OOOOOOOnnnkKppn", names, &o[0], &o[1], &PyDict_Type, &o[2],
                                     ResponderType, &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &o[10],
                                     &bs, &mv, &off, &pid, &maxr, &logging, &vhost, &app_num))
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
    H.vhost = vhost;
    H.app_num = app_num;
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
        Py_ssize_t length = 0;
        PyObject *num = PyNumber_Long(cl); /* int(cl), as worker.py */
        if (num) {
            length = PyLong_AsSsize_t(num);
            Py_DECREF(num);
        }
        if (PyErr_Occurred()) {
            PyErr_Clear();
            length = 0;
        }
        inp = PyObject_CallFunction(H.input_cls, "iy#n", conn, body, blen, length);
    } else {
        inp = H.empty_input;
        Py_INCREF(inp);
    }
    int code = 500, fatal = 0;
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
            report_pending("raised");
            if (!r->sent) {
                PyObject *x = PyObject_CallFunction(H.error_page, "iiO", conn, 500, proto);
                if (!x) PyErr_Clear();
                Py_XDECREF(x);
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
    if (!fatal && inp && inp != H.empty_input) {
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

/*
 * The request's log line, uWSGI's format, as worker.py's log_request
 * writes it: to stderr, which is the daemon's log pipe.
 */
static char *lbuf;
static Py_ssize_t lcap, llen;

static int lreserve(Py_ssize_t more) {
    if (llen + more <= lcap) return 0;
    Py_ssize_t ncap = (llen + more) * 2 + 512;
    char *nb = PyMem_Realloc(lbuf, ncap);
    if (!nb) return -1;
    lbuf = nb;
    lcap = ncap;
    return 0;
}

/* lstr appends a str as latin-1, "?" for what latin-1 lacks (worker.py:
 * encode("latin-1", "replace")); nothing for a missing or non-str value. */
static void lstr(PyObject *o) {
    if (!o || !PyUnicode_Check(o)) return;
    Py_ssize_t n = PyUnicode_GetLength(o);
    if (n <= 0 || lreserve(n) < 0) return;
    Py_UCS4 u[512];
    for (Py_ssize_t at = 0; at < n; at += 512) {
        Py_ssize_t k = n - at < 512 ? n - at : 512;
        PyObject *part = at == 0 && k == n ? (Py_INCREF(o), o) : PyUnicode_Substring(o, at, at + k);
        if (!part) {
            PyErr_Clear();
            return;
        }
        Py_UCS4 *got = PyUnicode_AsUCS4(part, u, 512, 0);
        Py_DECREF(part);
        if (!got) {
            PyErr_Clear();
            return;
        }
        for (Py_ssize_t i = 0; i < k; i++) lbuf[llen++] = u[i] < 256 ? (char)u[i] : '?';
    }
}

static void lfmt(const char *fmt, ...) {
    va_list ap;
    char tmp[256];
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n >= (int)sizeof tmp) n = sizeof tmp - 1;
    if (lreserve(n) < 0) return;
    memcpy(lbuf + llen, tmp, n);
    llen += n;
}

static PyObject *env_str(PyObject *env, PyObject *name) {
    PyObject *v = get(env, name);
    return v && PyUnicode_Check(v) ? v : NULL;
}

static void log_request(PyObject *env, int code, unsigned long long start, Py_ssize_t nvars, Py_ssize_t pktsize) {
    Responder *r = H.resp;
    unsigned long long served = get64(sb_base + H.slot_off + SB_REQUESTS);
    unsigned long long ms = (now_ns(CLOCK_MONOTONIC) - start) / 1000000;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", &tm); /* Python's time.ctime() */
    llen = 0;
    if (H.vhost) {
        PyObject *host = env_str(env, s_HTTP_HOST);
        lstr(host && PyUnicode_GetLength(host) > 0 ? host : env_str(env, s_SERVER_NAME));
        lfmt(" ");
    }
    lfmt("[pid: %lu|app: %zd|req: %llu/%llu] ", H.pid, H.app_num, served, served);
    lstr(env_str(env, s_REMOTE_ADDR));
    lfmt(" () {%zd vars in %zd bytes} [%s] ", nvars * 2, pktsize, when);
    lstr(env_str(env, s_REQUEST_METHOD));
    lfmt(" ");
    lstr(env_str(env, s_REQUEST_URI));
    lfmt(" => generated %zd bytes in %llu msecs (", r->nbytes, ms);
    lstr(r->proto);
    lfmt(" %d) %zd headers in %zd bytes\n", code, r->hcount, r->hsize);
    const char *p = lbuf;
    Py_ssize_t left = llen;
    while (left > 0) {
        ssize_t w = write(2, p, (size_t)left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* the log is gone: nothing to tell it */
        p += w;
        left -= w;
    }
}

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
    close_conn(conn);
    slot_finish(s, H.pid, -1);
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
        int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
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
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    ResponderType = (PyTypeObject *)PyType_FromSpec(&responder_spec);
    if (!ResponderType || PyModule_AddObject(m, "Responder", (PyObject *)ResponderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(ResponderType); /* PyModule_AddObject took one reference; hot_init's type check keeps using it */
    return m;
}
