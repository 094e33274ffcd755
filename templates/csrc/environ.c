/* Part of speedups.c, which includes it (one translation unit).
 * The WSGI environ from a uwsgi vars block: the vars cache, parse_vars,
 * finish_environ (which app, refused vars, SCRIPT_NAME/PATH_INFO, scheme).
 *
 * parse_vars(data, end) decodes a uwsgi vars block into the WSGI environ
 * dict: keys and values are latin-1 str (PEP 3333). nginx sends the same
 * keys, and mostly the same values, on every request, so both are cached
 * and reused (str is immutable). It returns None for a malformed block (a
 * length that runs past the end, or an empty key). */

/*
 * The vars cache, by position: nginx sends the same keys in the same order
 * on every request of a location, so entry i holds the i-th var's key (its
 * bytes and interned str) and the last value seen there. A hit costs a
 * length check and a memcmp, and saves decoding (and, for the key,
 * interning) a string; a miss replaces the entry. Nothing is hashed.
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

static PyObject *interned(const unsigned char *k, Py_ssize_t kl) {
    PyObject *key = latin1(k, kl);
    if (key) PyUnicode_InternInPlace(&key);
    return key;
}

/* cached_pair returns new references to the strs of the var at position
 * i of the block. */
static int cached_pair(Py_ssize_t i, const unsigned char *k, Py_ssize_t kl, const unsigned char *v, Py_ssize_t vl,
                       PyObject **ko, PyObject **vo) {
    if (i >= KC_SLOTS || kl > KC_KEY) {
        PyObject *key = interned(k, kl);
        if (!key) return -1;
        PyObject *val = latin1(v, vl);
        if (!val) { Py_DECREF(key); return -1; }
        *ko = key; *vo = val;
        return 0;
    }
    kc_entry *e = &kc[i];
    if (!e->key || e->klen != kl || memcmp(e->k, k, kl) != 0) {
        PyObject *key = interned(k, kl);
        if (!key) return -1;
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

/*
 * A new environ, sized for nginx's ~25 vars and the WSGI keys so it is not
 * resized three times while it fills. _PyDict_NewPresized is CPython's own
 * (exported by every version since 3.0, but not in the limited API), so
 * it is looked up at run time; without it, a plain dict.
 */
typedef PyObject *(*presized_fn)(Py_ssize_t);
static presized_fn dict_presized;

static PyObject *new_environ(void) { return dict_presized ? dict_presized(48) : PyDict_New(); }

/*
 * ascii_bytes: the bytes of a pure-ASCII str without copying (for ASCII,
 * latin-1 and UTF-8 are the same bytes), or NULL for any other str. It
 * uses PyUnicode_AsUTF8AndSize, public since 3.3 but in the limited API
 * only from 3.10, so looked up at run time like _PyDict_NewPresized.
 */
typedef const char *(*utf8_fn)(PyObject *, Py_ssize_t *);
static utf8_fn as_utf8;

static void find_runtime_helpers(void) {
    dict_presized = (presized_fn)dlsym(RTLD_DEFAULT, "_PyDict_NewPresized");
    as_utf8 = (utf8_fn)dlsym(RTLD_DEFAULT, "PyUnicode_AsUTF8AndSize");
}

static const char *ascii_bytes(PyObject *str, Py_ssize_t n) {
    Py_ssize_t un;
    if (!as_utf8) return NULL;
    const char *p = as_utf8(str, &un);
    if (!p) {
        PyErr_Clear(); /* a lone surrogate: the caller's slower path says what is wrong */
        return NULL;
    }
    return un == n ? p : NULL;
}

/*
 * latin1_into copies the first min(n, room) chars of str (n is its length)
 * into dst as latin-1 and returns how many it copied. A char past latin-1
 * becomes "?" when replace is set; otherwise the copy stops and -1 comes
 * back (no exception: the caller lets the codec raise the precise one).
 */
static Py_ssize_t latin1_into(char *dst, PyObject *str, Py_ssize_t n, Py_ssize_t room, int replace) {
    Py_ssize_t take = n < room ? n : room;
    const char *ascii = ascii_bytes(str, n);
    if (ascii) {
        memcpy(dst, ascii, take);
        return take;
    }
    Py_UCS4 u[256];
    for (Py_ssize_t at = 0; at < take; at += 256) {
        Py_ssize_t k = take - at < 256 ? take - at : 256;
        PyObject *part = PyUnicode_Substring(str, at, at + k);
        Py_UCS4 *got = part ? PyUnicode_AsUCS4(part, u, 256, 0) : NULL;
        Py_XDECREF(part);
        if (!got) {
            PyErr_Clear();
            return replace ? at : -1;
        }
        for (Py_ssize_t i = 0; i < k; i++) {
            if (u[i] > 255 && !replace) return -1;
            dst[at + i] = u[i] < 256 ? (char)u[i] : '?';
        }
    }
    return take;
}

/* parse_block: the environ of a vars block, or NULL; NULL without an
 * exception set means malformed. */
static PyObject *parse_block(const unsigned char *b, Py_ssize_t end) {
    Py_ssize_t pos = 4, nvar = 0;
    PyObject *env = new_environ();
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
        if (cached_pair(nvar++, b + k0, kl, b + v0, vl, &k, &v) < 0)
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
    *s_UWSGI_CALLABLE, *s_refused[PV_N_REFUSED_VARS], *s_HTTP_CONTENT_LENGTH,
    *s_HTTP_CONTENT_TYPE, *s_SCRIPT_NAME, *s_PATH_INFO, *s_HTTPS, *s_UWSGI_SCHEME, *s_REQUEST_SCHEME,
    *s_url_scheme, *s_empty, *s_http, *s_https, *s_colon, *s_REQUEST_METHOD, *s_SERVER_PROTOCOL,
    *s_CONTENT_LENGTH, *s_wsgi_input, *s_http10, *s_close, *s_drain, *s_fileno, *s_filelike,
    *s_REMOTE_ADDR, *s_REQUEST_URI;

static int intern_all(void) {
#define I(name, text) if (!(name = PyUnicode_InternFromString(text))) return -1;
    I(s_UWSGI_PYHOME, "UWSGI_PYHOME") I(s_UWSGI_HOME, "UWSGI_HOME") I(s_UWSGI_CHDIR, "UWSGI_CHDIR")
    I(s_UWSGI_SCRIPT, "UWSGI_SCRIPT") I(s_UWSGI_MODULE, "UWSGI_MODULE") I(s_UWSGI_CALLABLE, "UWSGI_CALLABLE")
    static const char *refused[] = PV_REFUSED_VARS;
    for (int i = 0; i < PV_N_REFUSED_VARS; i++) I(s_refused[i], refused[i])
    I(s_HTTP_CONTENT_LENGTH, "HTTP_CONTENT_LENGTH") I(s_HTTP_CONTENT_TYPE, "HTTP_CONTENT_TYPE")
    I(s_SCRIPT_NAME, "SCRIPT_NAME") I(s_PATH_INFO, "PATH_INFO") I(s_HTTPS, "HTTPS")
    I(s_UWSGI_SCHEME, "UWSGI_SCHEME") I(s_REQUEST_SCHEME, "REQUEST_SCHEME") I(s_url_scheme, "wsgi.url_scheme")
    I(s_empty, "") I(s_http, "http") I(s_https, "https") I(s_colon, ":") I(s_REQUEST_METHOD, "REQUEST_METHOD")
    I(s_SERVER_PROTOCOL, "SERVER_PROTOCOL") I(s_CONTENT_LENGTH, "CONTENT_LENGTH") I(s_wsgi_input, "wsgi.input")
    I(s_http10, "HTTP/1.0") I(s_close, "close") I(s_drain, "drain") I(s_fileno, "fileno") I(s_filelike, "filelike")
    I(s_REMOTE_ADDR, "REMOTE_ADDR") I(s_REQUEST_URI, "REQUEST_URI")
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
 *   var that loads code or files (protocol.h's PV_REFUSED_VARS),
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
    for (int i = 0; i < PV_N_REFUSED_VARS; i++)
        if (get(env, s_refused[i])) return 2;
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
