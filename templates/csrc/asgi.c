/* Part of speedups.c, which includes it (one translation unit).
 * ASGI: the scope from the environ (asgi.py's scope_of_py) and the
 * response head from what the app sends (asgi.py's head_lines_py).
 * asgi_init hands over asgi.py's constants once. */

static struct {
    PyObject *spec, *versions, *reasons, *client_gone;
    PyObject *names; /* HTTP_USER_AGENT -> b"user-agent", as met (bounded) */
    PyObject *k_type, *k_asgi, *k_http_version, *k_scheme, *k_path, *k_raw_path, *k_query_string, *k_root_path,
        *k_headers, *k_client, *k_server, *k_state, *k_method;
    PyObject *s_http, *s_websocket, *s_ws, *s_wss, *s_v11, *s_GET, *s_QUERY_STRING, *s_REMOTE_PORT,
        *s_SERVER_NAME, *s_SERVER_PORT, *s_CONTENT_TYPE, *s_HTTP_;
    PyObject *b_content_type, *b_content_length;
    Py_ssize_t body_chunk; /* the most of a body one http.request message carries */
} A;

static PyObject *asgi_init(PyObject *self, PyObject *args, PyObject *kw) {
    (void)self;
    static char *names[] = {"spec", "versions", "reasons", "client_gone", "body_chunk", NULL};
    PyObject *o[4];
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!O!On", names, &PyDict_Type, &o[0], &PyDict_Type, &o[1],
                                     &PyDict_Type, &o[2], &o[3], &A.body_chunk))
        return NULL;
    for (int i = 0; i < 4; i++) Py_INCREF(o[i]);
    A.spec = o[0], A.versions = o[1], A.reasons = o[2], A.client_gone = o[3];
    if (!A.names && !(A.names = PyDict_New())) return NULL;
#define I(name, text) if (!A.name && !(A.name = PyUnicode_InternFromString(text))) return NULL;
    I(k_type, "type") I(k_asgi, "asgi") I(k_http_version, "http_version") I(k_scheme, "scheme") I(k_path, "path")
    I(k_raw_path, "raw_path") I(k_query_string, "query_string") I(k_root_path, "root_path") I(k_headers, "headers")
    I(k_client, "client") I(k_server, "server") I(k_state, "state") I(k_method, "method") I(s_http, "http")
    I(s_websocket, "websocket") I(s_ws, "ws") I(s_wss, "wss") I(s_v11, "1.1") I(s_GET, "GET")
    I(s_QUERY_STRING, "QUERY_STRING") I(s_REMOTE_PORT, "REMOTE_PORT") I(s_SERVER_NAME, "SERVER_NAME")
    I(s_SERVER_PORT, "SERVER_PORT") I(s_CONTENT_TYPE, "CONTENT_TYPE") I(s_HTTP_, "HTTP_")
#undef I
    if (!A.b_content_type && !(A.b_content_type = PyBytes_FromString("content-type"))) return NULL;
    if (!A.b_content_length && !(A.b_content_length = PyBytes_FromString("content-length"))) return NULL;
    Py_RETURN_NONE;
}

/* as_latin1: a str's latin-1 bytes (environ values are latin-1 str). */
static PyObject *as_latin1(PyObject *s) {
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "environ values must be str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GetLength(s);
    const char *a = ascii_bytes(s, n);
    return a ? PyBytes_FromStringAndSize(a, n) : PyUnicode_AsLatin1String(s);
}

static int is_ascii(const char *p, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80) return 0;
    return 1;
}

/* name_slow: k[5:].lower().replace("_", "-").encode("latin-1"), as
 * asgi.py has it, for a key that is not ASCII. */
static PyObject *name_slow(PyObject *key) {
    PyObject *tail = PyUnicode_Substring(key, 5, PyUnicode_GetLength(key));
    PyObject *low = tail ? PyObject_CallMethod(tail, "lower", NULL) : NULL;
    PyObject *dash = low ? PyObject_CallMethod(low, "replace", "ss", "_", "-") : NULL;
    PyObject *name = dash ? PyUnicode_AsLatin1String(dash) : NULL;
    Py_XDECREF(tail);
    Py_XDECREF(low);
    Py_XDECREF(dash);
    return name;
}

/* header_name: b"user-agent" for "HTTP_USER_AGENT" (a new reference);
 * k is the key's bytes when it is ASCII, else NULL. */
static PyObject *header_name(PyObject *key, const char *k, Py_ssize_t n) {
    PyObject *name = PyDict_GetItem(A.names, key);
    if (name) {
        Py_INCREF(name);
        return name;
    }
    if (!k) {
        name = name_slow(key);
    } else if ((name = PyBytes_FromStringAndSize(NULL, n - 5))) {
        char *d = PyBytes_AsString(name);
        for (Py_ssize_t i = 5; i < n; i++) {
            char c = k[i];
            d[i - 5] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    }
    if (!name) return NULL;
    if (PyDict_Size(A.names) > 4096) PyDict_Clear(A.names); /* a client inventing names: do not grow for ever */
    if (PyDict_SetItem(A.names, key, name) < 0) Py_CLEAR(name);
    return name;
}

static int add_header(PyObject *out, PyObject *name, PyObject *value) {
    PyObject *v = as_latin1(value);
    PyObject *pair = v ? PyTuple_Pack(2, name, v) : NULL;
    int rc = pair ? PyList_Append(out, pair) : -1;
    Py_XDECREF(v);
    Py_XDECREF(pair);
    return rc;
}

/* headers_of: the request's headers, lower-cased byte names in nginx's
 * order; CONTENT_TYPE and CONTENT_LENGTH are headers again. */
static PyObject *headers_of(PyObject *env) {
    PyObject *out = PyList_New(0), *k, *v;
    Py_ssize_t pos = 0;
    if (!out) return NULL;
    while (PyDict_Next(env, &pos, &k, &v)) {
        if (!PyUnicode_Check(k)) continue;
        Py_ssize_t n = PyUnicode_GetLength(k);
        const char *a = n >= 5 ? ascii_bytes(k, n) : NULL;
        if (a ? memcmp(a, "HTTP_", 5) != 0 : n < 5 || PyUnicode_Tailmatch(k, A.s_HTTP_, 0, 5, -1) != 1) continue;
        PyObject *name = header_name(k, a, n);
        int rc = name ? add_header(out, name, v) : -1;
        Py_XDECREF(name);
        if (rc < 0) goto error;
    }
    PyObject *ct = PyDict_GetItem(env, A.s_CONTENT_TYPE), *cl = PyDict_GetItem(env, s_CONTENT_LENGTH);
    if (ct && PyObject_IsTrue(ct) && add_header(out, A.b_content_type, ct) < 0) goto error;
    if (cl && PyObject_IsTrue(cl) && add_header(out, A.b_content_length, cl) < 0) goto error;
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

/* port_number: int(port) (digits in C, anything else as int() has it). */
static PyObject *port_number(PyObject *port) {
    Py_ssize_t n = PyUnicode_Check(port) ? PyUnicode_GetLength(port) : -1;
    const char *a = n > 0 && n < 10 ? ascii_bytes(port, n) : NULL;
    long v = 0;
    for (Py_ssize_t i = 0; a && i < n; i++) {
        if (a[i] < '0' || a[i] > '9') a = NULL;
        else v = v * 10 + (a[i] - '0');
    }
    return a ? PyLong_FromLong(v) : PyObject_CallFunctionObjArgs((PyObject *)&PyLong_Type, port, NULL);
}

/* addr: [host, int(port or 0)] (0 for a port that is no number), or None. */
static PyObject *addr(PyObject *env, PyObject *hk, PyObject *pk) {
    PyObject *host = PyDict_GetItem(env, hk), *port = PyDict_GetItem(env, pk), *p = NULL;
    if (!host || !PyObject_IsTrue(host)) Py_RETURN_NONE;
    if (port && PyObject_IsTrue(port)) {
        if (!(p = port_number(port))) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) return NULL;
            PyErr_Clear();
        }
    }
    if (!p && !(p = PyLong_FromLong(0))) return NULL;
    PyObject *l = PyList_New(2);
    if (!l) {
        Py_DECREF(p);
        return NULL;
    }
    Py_INCREF(host);
    PyList_SetItem(l, 0, host);
    PyList_SetItem(l, 1, p);
    return l;
}

static PyObject *env_or(PyObject *env, PyObject *key, PyObject *dflt) {
    PyObject *v = PyDict_GetItem(env, key);
    return v ? v : dflt;
}

/* path_of: root and path (root + PATH_INFO) as the scope has them: UTF-8
 * decoded (with replacement) when nginx's latin-1 is not ASCII. */
static int path_of(PyObject *env, PyObject **root, PyObject **path) {
    PyObject *r = env_or(env, s_SCRIPT_NAME, s_empty), *pi = env_or(env, s_PATH_INFO, s_empty);
    PyObject *whole = PyUnicode_Concat(r, pi);
    if (!whole) return -1;
    Py_ssize_t n = PyUnicode_GetLength(whole);
    if (ascii_bytes(whole, n) || n == 0) {
        Py_INCREF(r);
        *root = r, *path = whole;
        return 0;
    }
    PyObject *wb = as_latin1(whole), *rb = wb ? as_latin1(r) : NULL;
    Py_DECREF(whole);
    if (!rb) {
        Py_XDECREF(wb);
        return -1;
    }
    int ascii = is_ascii(PyBytes_AsString(wb), PyBytes_Size(wb));
    *path = ascii ? PyUnicode_DecodeLatin1(PyBytes_AsString(wb), PyBytes_Size(wb), NULL)
                  : PyUnicode_DecodeUTF8(PyBytes_AsString(wb), PyBytes_Size(wb), "replace");
    *root = *path ? PyUnicode_DecodeUTF8(PyBytes_AsString(rb), PyBytes_Size(rb), "replace") : NULL;
    Py_DECREF(wb);
    Py_DECREF(rb);
    if (*root) return 0;
    Py_XDECREF(*path);
    return -1;
}

static int set_new(PyObject *d, PyObject *k, PyObject *v) {
    if (!v) return -1;
    int rc = PyDict_SetItem(d, k, v);
    Py_DECREF(v);
    return rc;
}

/* raw_path: the request target as sent, before any "?"; b"" when absent. */
static PyObject *raw_path(PyObject *env) {
    PyObject *uri = PyDict_GetItem(env, s_REQUEST_URI), *b;
    if (!uri || !(b = as_latin1(uri))) return uri ? NULL : PyBytes_FromStringAndSize("", 0);
    const char *p = PyBytes_AsString(b), *q = memchr(p, '?', (size_t)PyBytes_Size(b));
    if (!q) return b;
    PyObject *cut = PyBytes_FromStringAndSize(p, q - p);
    Py_DECREF(b);
    return cut;
}

/* method: REQUEST_METHOD upper-cased (nginx's is already: no copy then). */
static PyObject *method_of(PyObject *env) {
    PyObject *m = env_or(env, s_REQUEST_METHOD, A.s_GET);
    Py_ssize_t n = PyUnicode_Check(m) ? PyUnicode_GetLength(m) : -1;
    const char *a = n >= 0 ? ascii_bytes(m, n) : NULL;
    int upper = a != NULL;
    for (Py_ssize_t i = 0; upper && i < n; i++) upper = !(a[i] >= 'a' && a[i] <= 'z');
    if (upper) {
        Py_INCREF(m);
        return m;
    }
    return PyObject_CallMethod(m, "upper", NULL);
}

/* asgi_scope(env, kind, state): asgi.py's scope_of_py in C. */
static PyObject *asgi_scope(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *env, *kind, *state, *root = NULL, *path = NULL;
    if (!PyArg_ParseTuple(args, "O!UO!", &PyDict_Type, &env, &kind, &PyDict_Type, &state)) return NULL;
    if (!A.spec) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_init first");
        return NULL;
    }
    PyObject *scope = dict_presized ? dict_presized(14) : PyDict_New();
    if (!scope || path_of(env, &root, &path) < 0) goto error;
    int ws = PyUnicode_Compare(kind, A.s_websocket) == 0;
    PyObject *scheme = env_or(env, s_url_scheme, A.s_http);
    if (ws) scheme = str_eq(scheme, s_https) ? A.s_wss : A.s_ws;
    PyObject *version = PyDict_GetItem(A.versions, env_or(env, s_SERVER_PROTOCOL, s_empty));
    PyObject *raw = raw_path(env);
    if (raw && PyBytes_Size(raw) == 0) {
        Py_DECREF(raw);
        raw = PyUnicode_AsUTF8String(path);
    }
    if (PyDict_SetItem(scope, A.k_type, kind) < 0 || PyDict_SetItem(scope, A.k_asgi, A.spec) < 0 ||
        PyDict_SetItem(scope, A.k_http_version, version ? version : A.s_v11) < 0 ||
        PyDict_SetItem(scope, A.k_scheme, scheme) < 0 || PyDict_SetItem(scope, A.k_path, path) < 0 ||
        set_new(scope, A.k_raw_path, raw) < 0 ||
        set_new(scope, A.k_query_string, as_latin1(env_or(env, A.s_QUERY_STRING, s_empty))) < 0 ||
        PyDict_SetItem(scope, A.k_root_path, root) < 0 || set_new(scope, A.k_headers, headers_of(env)) < 0 ||
        set_new(scope, A.k_client, addr(env, s_REMOTE_ADDR, A.s_REMOTE_PORT)) < 0 ||
        set_new(scope, A.k_server, addr(env, A.s_SERVER_NAME, A.s_SERVER_PORT)) < 0 ||
        set_new(scope, A.k_state, PyDict_Copy(state)) < 0)
        goto error;
    if (!ws && PyUnicode_Compare(kind, A.s_http) == 0 && set_new(scope, A.k_method, method_of(env)) < 0) goto error;
    Py_DECREF(root);
    Py_DECREF(path);
    return scope;
error:
    Py_XDECREF(root);
    Py_XDECREF(path);
    Py_XDECREF(scope);
    return NULL;
}

/*
 * The response head (asgi.py's head_lines_py): the status line and the
 * app's headers, checked as a WSGI app's are (respond.c's check_header),
 * without the final CRLF; has_cl says whether the app gave a
 * Content-Length. Built in respond.c's hbuf; head_bytes copies it out.
 */
static int status_error(PyObject *status) {
    PyErr_Format(PyExc_ValueError, "ASGI response status %R is not a 3-digit int", status);
    return -1;
}

static int pair_error(PyObject *pair) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "ASGI response headers must be [bytes, bytes] pairs, not %R", pair);
    return -1;
}

/* head_header appends "name: value\r\n" for one pair, checked. */
static int head_header(Py_ssize_t *len, PyObject *pair, int *has_cl) {
    PyObject *seq = PySequence_Fast(pair, "not a pair");
    if (!seq) return pair_error(pair);
    PyObject *k = PySequence_Size(seq) == 2 ? PySequence_GetItem(seq, 0) : NULL;
    PyObject *v = k ? PySequence_GetItem(seq, 1) : NULL;
    Py_DECREF(seq);
    int rc = -1;
    char *kp, *vp;
    Py_ssize_t kn, vn;
    if (!k || !v || !PyBytes_Check(k) || !PyBytes_Check(v)) {
        pair_error(pair);
        goto out;
    }
    PyBytes_AsStringAndSize(k, &kp, &kn);
    PyBytes_AsStringAndSize(v, &vp, &vn);
    int token = kn > 0;
    for (Py_ssize_t i = 0; token && i < kn; i++) token = is_token_char((unsigned char)kp[i]);
    int hop = 0;
    for (size_t i = 0; token && i < sizeof hop_by_hop / sizeof *hop_by_hop; i++)
        hop |= (size_t)kn == strlen(hop_by_hop[i]) && strncasecmp(kp, hop_by_hop[i], kn) == 0;
    if (bad_text(vp, vn) || !token || hop) { /* the str name for the message, as asgi.py says it */
        PyObject *name = PyUnicode_DecodeLatin1(kp, kn, NULL);
        if (name && bad_text(vp, vn))
            PyErr_Format(PyExc_ValueError, "response header %R has CR, LF or NUL in its value", name);
        else if (name)
            check_header(name, kp, kn, vp, vn);
        Py_XDECREF(name);
        goto out;
    }
    if (kn == 14 && strncasecmp(kp, "content-length", 14) == 0) *has_cl = 1;
    rc = happend_c(len, kp, kn) < 0 || happend_c(len, ": ", 2) < 0 || happend_c(len, vp, vn) < 0 ||
                 happend_c(len, "\r\n", 2) < 0 ? -1 : 0;
out:
    Py_XDECREF(k);
    Py_XDECREF(v);
    return rc;
}

/* head_build builds the head in hbuf: its length, or -1. */
static Py_ssize_t head_build(PyObject *proto, PyObject *status, PyObject *headers, int *has_cl) {
    Py_ssize_t len = 0;
    long code = PyLong_CheckExact(status) ? PyLong_AsLong(status) : -1;
    if (code < 100 || code > 999) return PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_OverflowError) ? -1 : status_error(status);
    PyObject *reason = PyDict_GetItem(A.reasons, status);
    char num[8];
    snprintf(num, sizeof num, " %ld ", code);
    if (happend(&len, proto) < 0 || happend_c(&len, num, 5) < 0 || (reason ? happend(&len, reason) : happend_c(&len, "Unknown", 7)) < 0 ||
        happend_c(&len, "\r\n", 2) < 0)
        return -1;
    *has_cl = 0;
    PyObject *it = PyObject_GetIter(headers), *pair;
    if (!it) return -1;
    while ((pair = PyIter_Next(it))) {
        int rc = head_header(&len, pair, has_cl);
        Py_DECREF(pair);
        if (rc < 0) break;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : len;
}

/* head_lines(proto, status, headers) -> (head, has_cl), as asgi.py's. */
static PyObject *head_lines(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *proto, *status, *headers;
    int has_cl;
    if (!PyArg_ParseTuple(args, "UOO", &proto, &status, &headers)) return NULL;
    if (!A.reasons) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_init first");
        return NULL;
    }
    Py_ssize_t n = head_build(proto, status, headers, &has_cl);
    if (n < 0) return NULL;
    return Py_BuildValue("(y#O)", hbuf, n, has_cl ? Py_True : Py_False);
}
