/* Part of speedups.c, which includes it (one translation unit).
 * The request's log line, in uWSGI's format. */

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
    llen += latin1_into(lbuf + llen, o, n, n, 1);
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
    if (H.log_prefix_len > 0) lfmt("%.*s", (int)H.log_prefix_len, H.log_prefix);
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
        ssize_t w = write(H.log_fd, p, (size_t)left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* the log is gone: nothing to tell it */
        p += w;
        left -= w;
    }
}
