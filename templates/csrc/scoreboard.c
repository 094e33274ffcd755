/* Part of speedups.c, which includes it (one translation unit).
 * The worker's scoreboard slot: state, counters, latency histogram. */

/*
 * The worker's slot in the scoreboard (the layout is protocol.h's, written
 * by the daemon from uwsgictl/pool/protocol.go): the worker's state and its
 * counters live there and nowhere else, written on every request, so in C,
 * through this process's own mapping of the shared memory. Only this worker
 * writes its slot; the daemon reads it while it changes, so every field is
 * one aligned atomic store (never byte by byte: a torn start time would get
 * a healthy worker killed for harakiri), and state, start and the request's
 * name change between two steps of the slot's sequence counter (odd while
 * they change), which the daemon reads around them.
 */
static unsigned char *sb_base;
static Py_ssize_t sb_len;

enum {
    SLOT_SIZE = PV_SLOT_SIZE, REQ_OFF = PV_REQ_OFF, REQ_LEN = PV_REQ_LEN, HIST_OFF = PV_HIST_OFF,
    HIST_BUCKETS = PV_HIST_BUCKETS, ST_IDLE = PV_ST_IDLE, ST_BUSY = PV_ST_BUSY, SB_PID = PV_SB_PID,
    SB_STATE = PV_SB_STATE, SB_START = PV_SB_START, SB_SEQ = PV_SB_SEQ, SB_REQUESTS = PV_SB_REQUESTS,
    SB_TOTAL = PV_SB_TOTAL, SB_ERRORS = PV_SB_ERRORS, SB_LAST_MS = PV_SB_LAST_MS, SB_TX = PV_SB_TX,
    SB_FORWARDED = PV_SB_FORWARDED, SB_CLASSES = PV_SB_CLASSES,
    SB_SHARED_NS = PV_HDR_SHARED_NS, /* app header: last request this app took on the shared socket */
};

static void put32(unsigned char *p, unsigned long v) { __atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE); }
static void put64(unsigned char *p, unsigned long long v) { __atomic_store_n((uint64_t *)p, (uint64_t)v, __ATOMIC_RELEASE); }
static unsigned long get32(const unsigned char *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED); }
static unsigned long long get64(const unsigned char *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED); }

/* add64: only this worker writes its counters, so a load and a store (no
 * read-modify-write instruction) is enough; the store is whole. */
static void add64(unsigned char *p, unsigned long long d) { put64(p, get64(p) + d); }

/* mark_begin/mark_end bracket a change of state, start and request name. */
static void mark_begin(unsigned char *s) { put64(s + SB_SEQ, get64(s + SB_SEQ) + 1); __atomic_thread_fence(__ATOMIC_RELEASE); }
static void mark_end(unsigned char *s) { put64(s + SB_SEQ, get64(s + SB_SEQ) + 1); }

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
    mark_begin(s);
    put32(s + SB_PID, pid);
    put32(s + SB_STATE, ST_BUSY);
    put64(s + SB_START, start);
    memset(s + REQ_OFF, 0, REQ_LEN); /* not the last request's, while this one is read */
    mark_end(s);
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
    unsigned char req[REQ_LEN];
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
    mark_begin(s);
    memcpy(s + REQ_OFF, req, REQ_LEN);
    mark_end(s);
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

/* slot_count adds to the counters; status (0: none) is an answer's, counted
 * by its class. */
static void slot_count(unsigned char *s, unsigned long long requests, unsigned long long errors,
                       unsigned long long tx, unsigned long long forwarded, int status) {
    add64(s + SB_REQUESTS, requests);
    add64(s + SB_ERRORS, errors);
    add64(s + SB_TX, tx);
    add64(s + SB_FORWARDED, forwarded);
    if (status >= 100 && status <= 599) add64(s + SB_CLASSES + 8 * (status / 100 - 1), 1);
}

/* sb_count(off, requests, errors, tx, forwarded, status): add to the counters. */
static PyObject *sb_count(PyObject *self, PyObject *args) {
    (void)self;
    Py_ssize_t off;
    unsigned long long requests, errors, tx, forwarded;
    int status = 0;
    unsigned char *s;
    if (!PyArg_ParseTuple(args, "nKKKK|i", &off, &requests, &errors, &tx, &forwarded, &status)) return NULL;
    if (!(s = slot_at(off))) return NULL;
    slot_count(s, requests, errors, tx, forwarded, status);
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
    mark_begin(s);
    put32(s + SB_PID, pid);
    put32(s + SB_STATE, ST_IDLE);
    put64(s + SB_START, 0);
    mark_end(s);
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
