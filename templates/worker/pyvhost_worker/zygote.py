"""The app's zygote: imports the app once, forks workers on the daemon's
command, reaps them; and a new worker's first steps."""

import gc
import os
import select

from .common import (CFG, CTL_FD, HANDOFF_FD, SCOREBOARD_FD, STOP_SIGNALS, ST_DONE, ST_IMPORT_FAILED, TOMASTER_FD, _c,
                     format_exc, json_loads, log, send_ctl, signal)
from .loadapp import check_interface, load_app_from
from .scoreboard import Slot
from .worker import Worker


def load_app():
    """Import the app exactly as the daemon's users expect uWSGI to (see
    load_app_from: module[:callable], module:factory()); returns it and its
    interface ("wsgi" or "asgi": --interface, else what the app is)."""
    app = load_app_from(CFG.get("chdir"), CFG["script"])
    return app, check_interface(app, CFG["script"], CFG.get("interface") or "")


def probe_asgi(app):
    """Run an ASGI app's lifespan startup and shutdown once, in a child
    (no event loop, no connection may exist in the zygote, which forks the
    workers): a startup that fails fails the app as an import does, with
    its traceback. Returns that traceback, or None."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 0
        try:
            from .loadapp import probe_lifespan
            probe_lifespan(app)
        except BaseException as e:
            msg = str(e) if type(e).__name__ == "LifespanFailed" else format_exc()
            os.write(w, ("lifespan startup failed:\n" + msg.strip()).encode("utf-8", "replace"))
            code = 3
        os._exit(code)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    return b"".join(chunks).decode("utf-8", "replace") or "lifespan startup failed (status %d)" % status


def set_limits():
    mb = CFG.get("limit_as_mb") or 0
    if mb > 0:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))


# --------------------------------------------------------------------------
# WSGI pieces


def prepare_fork():
    """Import, in the zygote, what every worker needs right after fork
    (mmap for the scoreboard; ctypes for prctl when the C speedups, which
    have their own, are not loaded): imported before fork, their pages stay
    shared; imported after, every worker pays ~0.3 MB for them."""
    global _prctl
    import mmap  # noqa: F401 (open_scoreboard's)
    if _c is not None:
        return
    try:
        import ctypes
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except Exception:
        _prctl = None


def die_with_parent():
    """Ask the kernel to kill this worker if its zygote dies."""
    PR_SET_PDEATHSIG = 1
    if _c is not None:
        _c.die_with_parent()
    elif _prctl is not None:
        try:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:
            pass  # the worker loop also notices a changed parent pid


# --------------------------------------------------------------------------
# The zygote


def keep_descriptors_private():
    """The descriptors this program holds for the daemon are close-on-exec
    (the daemon hands them over inheritable): a process the app starts
    (os.system, subprocess) must not keep the daemon's sockets, its
    scoreboard or its control channel after the worker is gone. fork() still
    gives them to the workers."""
    for fd in [CTL_FD, SCOREBOARD_FD, HANDOFF_FD, TOMASTER_FD] + CFG.get("own_fds", []) + CFG.get("shared_fds", []):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass


def zygote():
    keep_descriptors_private()
    set_limits()
    lazy = CFG.get("lazy", False)
    app = None
    interface = None
    if not lazy:
        try:
            app, interface = load_app()
            failed = probe_asgi(app) if interface == "asgi" else None
        except BaseException:
            failed = format_exc()
        if failed is not None:
            send_ctl({"ev": "failed", "error": failed.rstrip().splitlines()[-1], "traceback": failed})
            os._exit(1)
    elif CFG.get("chdir"):
        os.chdir(CFG["chdir"])
    prepare_fork()
    gc.collect()
    if hasattr(gc, "freeze"):
        gc.freeze()  # keep the imported objects' pages shared with the workers
    send_ctl({"ev": "ready", "pid": os.getpid(), "interface": interface or "", "speedups": _c is not None})
    children = {}
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda s, f: None)
    stopping = [False]

    def stop(signum=None, frame=None):
        stopping[0] = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    me = os.getpid()
    while True:
        reap(children)
        if stopping[0] and not children:
            os._exit(0)
        try:
            ready, _, _ = select.select([CTL_FD, wake_r], [], [], 1.0)
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
        if CTL_FD in ready:
            try:
                msg = os.read(CTL_FD, 65536)
            except OSError:
                msg = b""
            if not msg:
                stop()  # the daemon is gone
                continue
            cmd = json_loads(msg)
            if cmd.get("cmd") == "spawn" and not stopping[0]:
                slot = cmd["slot"]
                # No stop signal may fall between fork() and the child's own
                # handlers (it would run the zygote's, and the worker would
                # never stop), nor between fork() and recording the child.
                old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                pid = os.fork()
                if pid == 0:
                    run_worker(app, interface, slot, me, old_mask, wake_r, wake_w)
                children[pid] = slot
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                send_ctl({"ev": "spawned", "slot": slot, "pid": pid})
            elif cmd.get("cmd") == "stop":
                stop()


def reap(children):
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        slot = children.pop(pid, -1)
        send_ctl({"ev": "exited", "slot": slot, "pid": pid, "status": status})


def run_worker(app, interface, slot, zygote_pid, old_mask, wake_r, wake_w):
    """A new worker, right after fork(); never returns. Its last word in
    its slot tells the daemon why it exits: ST_DONE (recycled, asked to
    stop, its zygote gone), ST_IMPORT_FAILED (--lazy-apps); any other exit,
    whatever its status, is a crash the daemon logs."""
    # First of all: die with the zygote. A zygote killed before this line
    # ran leaves the worker another parent, and the worker ends here.
    die_with_parent()
    if os.getppid() != zygote_pid:
        os._exit(1)
    code = 0
    worker = None
    try:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)  # until the worker sets its own
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        signal.set_wakeup_fd(-1)
        os.close(wake_r)
        os.close(wake_w)
        os.close(CTL_FD)
        if app is None:
            try:
                app, interface = load_app()
            except BaseException:
                log("app %s failed to import:\n%s" % (CFG.get("name", CFG.get("app_id")), format_exc().rstrip()))
                Slot(slot).mark(ST_IMPORT_FAILED)
                os._exit(1)
        if interface == "asgi":
            from .asgiworker import ASGIWorker
            worker = ASGIWorker(app, slot)
        else:
            worker = Worker(app, slot)
        worker.run()
    except SystemExit as e:
        if worker is None or not worker.stopping:
            # The app's own sys.exit() in a request: its status is the app's.
            code = e.code if isinstance(e.code, int) else 1
            log("the app called sys.exit(%r) during a request: the worker exits" % (e.code,))
            os._exit(code)
    except BaseException:
        log("worker crashed:\n%s" % format_exc().rstrip())
        os._exit(1)
    worker.sb.mark(ST_DONE)
    os._exit(0)
