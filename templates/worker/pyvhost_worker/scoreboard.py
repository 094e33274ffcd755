"""The app's scoreboard: shared memory the daemon reads, one slot per
worker (layout in CFG["protocol"]); and a worker's binding to its slot."""

import os
import time

from .common import (APP_HEADER, CFG, HDR_LISTEN, HDR_SHARED_NS, HIST_BUCKETS, HIST_OFF, REQ_LEN, REQ_OFF, SB_CLASSES, SB_ERRORS,
                     SB_FORWARDED, SB_LAST_MS, SB_PID, SB_REQUESTS, SB_SEQ, SB_START, SB_STATE, SB_TOTAL, SB_TX,
                     SCOREBOARD_FD, SLOT_SIZE, ST_BUSY, ST_IDLE, U64_MASK, _c)


class Slot(object):
    """A worker's slot in the app's scoreboard (shared memory the daemon
    reads; layout in CFG["protocol"]). Every field is written in place with
    one aligned store through a 'Q' or 'I' view, never byte by byte (a torn
    start time would get a healthy worker killed for harakiri), and state,
    start and request name change between two steps of the slot's sequence
    counter (odd while they change). The C speedups' sb_* are the same in C."""

    def __init__(self, slot, mem=None):
        self.size = APP_HEADER + SLOT_SIZE * CFG["slots"]
        if mem is None:
            import mmap
            mem = mmap.mmap(SCOREBOARD_FD, self.size)
        self.mem = mem
        self.q = memoryview(self.mem).cast("Q")
        self.i = memoryview(self.mem).cast("I")
        self.off = APP_HEADER + slot * SLOT_SIZE
        self.pid = os.getpid()
        q = self.off // 8
        self.seq, self.start, self.last_ms, self.total = q + SB_SEQ // 8, q + SB_START // 8, q + SB_LAST_MS // 8, q + SB_TOTAL // 8
        self.req = self.off + REQ_OFF

    def mark(self, state, start_ns=0, name=None):
        """Set state, start (and the request's name) as one change."""
        q, i = self.q, self.i
        q[self.seq] += 1
        i[(self.off + SB_PID) // 4] = self.pid
        i[(self.off + SB_STATE) // 4] = state
        q[self.start] = start_ns
        if name is not None:
            self.mem[self.req:self.req + REQ_LEN] = name[:REQ_LEN].ljust(REQ_LEN, b"\0")
        q[self.seq] += 1

    def begin(self, start_ns):
        self.mark(ST_BUSY, start_ns, b"")  # named once the vars are read

    def request(self, env):
        # What the worker is busy with, for ctl and the status page: method
        # and path only (a query string can carry secrets).
        name = (env.get("REQUEST_METHOD", "") + " " + env.get("PATH_INFO", "")).encode("latin-1", "replace")
        q = self.q
        q[self.seq] += 1
        self.mem[self.req:self.req + REQ_LEN] = name[:REQ_LEN].ljust(REQ_LEN, b"\0")
        q[self.seq] += 1

    def count(self, requests=0, errors=0, tx=0, forwarded=0, status=0):
        """Add to the worker's counters; status (0: none) is an answer's,
        counted by its class."""
        q, base = self.q, self.off // 8
        for off, n in ((SB_REQUESTS, requests), (SB_ERRORS, errors), (SB_TX, tx), (SB_FORWARDED, forwarded)):
            if n:
                q[base + off // 8] = (q[base + off // 8] + n) & U64_MASK
        if 100 <= status <= 599:
            i = base + (SB_CLASSES + 8 * (status // 100 - 1)) // 8
            q[i] = (q[i] + 1) & U64_MASK

    def served(self):
        """The requests this worker has answered."""
        return self.q[(self.off + SB_REQUESTS) // 8]

    def finish(self, dur_ns):
        """The worker is idle again; dur_ns < 0: no latency to count."""
        self.mark(ST_IDLE)
        self.record(dur_ns)

    def record(self, dur_ns):
        """A request was answered in dur_ns (< 0: no latency to count); the
        state is left as it is (an ASGI worker serves many at once)."""
        q = self.q
        q[self.last_ms] = int(time.time() * 1000)
        if dur_ns < 0:
            return
        q[self.total] = (q[self.total] + dur_ns) & U64_MASK
        b = min((dur_ns // 1000).bit_length(), HIST_BUCKETS - 1)
        at = (self.off + HIST_OFF) // 4 + b
        self.i[at] = (self.i[at] + 1) & 0xFFFFFFFF


class SlotBinding(object):
    """A worker's bookkeeping in its slot: through the C speedups when they
    are loaded (one call each), else through Slot. Needs self.slot,
    self.slot_off and self.pid."""

    # -- scoreboard: in C when the speedups are loaded (open_scoreboard
    # picks), else through Slot

    def open_scoreboard(self, mem=None, use_c=True):
        """Map the slot (mem: a scoreboard already mapped, for the selftest)."""
        self.sb = Slot(self.slot, mem)
        if _c is not None and use_c:
            if mem is None:
                _c.sb_map(SCOREBOARD_FD, self.sb.size)
            self.mark_busy = self.mark_busy_c
            self.mark_request = self.mark_request_c
            self.count = self.count_c
            self.served = self.served_c
            self.finish_stats = self.finish_stats_c
        else:
            self.mark_busy = self.sb.begin
            self.mark_request = self.sb.request
            self.count = self.sb.count
            self.served = self.sb.served
            self.finish_stats = self.sb.finish

    def mark_busy_c(self, start_ns):
        _c.sb_begin(self.slot_off, self.pid, start_ns)

    def mark_request_c(self, env):
        _c.sb_request(self.slot_off, env)

    def count_c(self, requests=0, errors=0, tx=0, forwarded=0, status=0):
        _c.sb_count(self.slot_off, requests, errors, tx, forwarded, status)

    def served_c(self):
        return _c.sb_served(self.slot_off)

    def finish_stats_c(self, dur_ns):
        _c.sb_finish(self.slot_off, self.pid, dur_ns)

    def listen_shared(self):
        return self.sb.i[HDR_LISTEN // 4] != 0

    def note_shared_traffic(self):
        self.sb.q[HDR_SHARED_NS // 8] = time.monotonic_ns()
