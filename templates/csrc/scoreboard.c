/* Part of speedups.c, which includes it (one translation unit).
 * The worker's scoreboard slot: state, counters, latency histogram. */

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
        if (i == 1 && n < REQ_LEN) req[n++] = ' ';
        if (!parts[i] || !PyUnicode_Check(parts[i])) continue;
        n += latin1_into((char *)req + n, parts[i], PyUnicode_GetLength(parts[i]), REQ_LEN - n, 1);
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
