# load_app_from: how the worker (zygote.py imports it) and the deploy's
# preflight import (deployer/preflight.go runs this file's text) find an
# app: one definition, so a preflight that passes means the daemon will
# import the app the same way. Standard library only, no relative import.


def load_app_from(chdir, script):
    """Import MODULE[:CALLABLE] as uWSGI and gunicorn do: chdir, the app
    directory first on sys.path, CALLABLE defaulting to "application";
    CALLABLE() is an app factory, called once here (without arguments)."""
    import os
    import sys
    if chdir:
        os.chdir(chdir)
        sys.path.insert(0, chdir)
    module, _, name = script.partition(":")
    factory = name.endswith("()")
    name = (name[:-2] if factory else name) or "application"
    mod = __import__(module)
    for part in module.split(".")[1:]:
        mod = getattr(mod, part)
    app = getattr(mod, name, None)
    if app is None:
        raise AttributeError("no callable %r in %s%s" % (name, module, _app_hint(mod, module)))
    if factory:
        if not callable(app):
            raise TypeError("%s:%s() is not a factory: %s is not callable" % (module, name, name))
        app = app()
        what = "%s:%s()" % (module, name)
        if not callable(app):
            raise TypeError("%s returned %s, not a WSGI callable" % (what, type(app).__name__))
    elif not callable(app):
        raise TypeError("%s:%s is not callable" % (module, name))
    return app


def _app_hint(mod, module):
    """'; did you mean flaskr:create_app()?' from the module's own names:
    callables named like an app or an app factory."""
    import inspect
    seen = []
    for attr in sorted(vars(mod)):
        obj = getattr(mod, attr)
        if attr.startswith("_") or "app" not in attr.lower() or not callable(obj) or inspect.ismodule(obj):
            continue
        call = ""
        if inspect.isfunction(obj):
            try:
                params = inspect.signature(obj).parameters.values()
            except (TypeError, ValueError):
                params = ()
            if not any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
                call = "()"  # a function of no required arguments: most likely a factory
        seen.append("%s:%s%s" % (module, attr, call))
    return "; did you mean %s?" % " or ".join(seen[:3]) if seen else ""


CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect (the zygote's memory)


def _is_coroutine_function(f):
    while type(f).__name__ == "partial" and hasattr(f, "func"):  # functools.partial
        f = f.func
    code = getattr(getattr(f, "__func__", f), "__code__", None)
    return bool(code is not None and code.co_flags & CO_COROUTINE) or \
        getattr(f, "_is_coroutine_marker", None) is not None  # inspect.markcoroutinefunction (3.12)


def app_interface(app):
    """"asgi" for an ASGI 3 app — a coroutine function, or an object whose
    __call__ is one (Starlette, FastAPI, Django's ASGIHandler) — else
    "wsgi"."""
    if _is_coroutine_function(app):
        return "asgi"
    call = getattr(type(app), "__call__", None)
    if call is not None and not isinstance(app, type) and _is_coroutine_function(call):
        return "asgi"
    return "wsgi"


def check_interface(app, script, wanted):
    """The interface app is served with: wanted ("asgi", "wsgi") when app
    is one, what it is when wanted is "" (auto); a one-line TypeError when
    the app is not what was asked for."""
    found = app_interface(app)
    if wanted and wanted != found:
        what = "an ASGI app (async, taking scope, receive, send)" if found == "asgi" else \
            "a WSGI app (a plain callable taking environ, start_response)"
        raise TypeError("%s is %s, not %s as --interface %s says: deploy with --interface %s, or without --interface"
                        % (script, what, wanted.upper(), wanted, found))
    return found


class LifespanFailed(Exception):
    """The app said lifespan.startup.failed (its message: a traceback, as
    Starlette sends)."""


class Lifespan(object):
    """An ASGI app's lifespan (asgiref's lifespan.rst): startup before any
    request, shutdown after the last. An app that raises on the lifespan
    scope (or returns without answering) does not support it and runs
    without it. state is shared into every request's scope."""

    def __init__(self, app, log=None, timeout=60.0):
        self.app, self.log, self.timeout = app, log or (lambda msg: None), timeout
        self.state = {}
        self.supported = False

    async def startup(self):
        import asyncio
        self.inbox, self.answers = asyncio.Queue(), asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        msg = await asyncio.wait_for(self.answers.get(), self.timeout)
        kind = msg.get("type")
        if kind == "lifespan.startup.complete":
            self.supported = True
        elif kind == "lifespan.startup.failed":
            raise LifespanFailed(msg.get("message") or "lifespan.startup.failed")
        elif kind == "raised":
            self.log("the app does not support ASGI lifespan (%s: %s): it runs without it" % (
                type(msg["exc"]).__name__, msg["exc"]))
        elif kind == "returned":
            self.log("the app returned on the ASGI lifespan scope without answering: it runs without lifespan")
        else:
            raise RuntimeError("unexpected ASGI message %r in lifespan startup" % (kind,))

    async def shutdown(self):
        """Tell the app the worker stops; a failure is logged, not raised."""
        import asyncio
        if not self.supported:
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            msg = await asyncio.wait_for(self.answers.get(), self.timeout)
        except asyncio.TimeoutError:
            self.log("lifespan shutdown took more than %gs: not waited for" % self.timeout)
            return
        if msg.get("type") == "lifespan.shutdown.failed":
            self.log("lifespan shutdown failed: %s" % (msg.get("message") or "").strip())
        elif msg.get("type") == "raised":
            self.log("lifespan shutdown raised %s: %s" % (type(msg["exc"]).__name__, msg["exc"]))

    async def _run(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self.inbox.get, self.answers.put)
        except Exception as e:
            await self.answers.put({"type": "raised", "exc": e})
        else:
            await self.answers.put({"type": "returned"})


def probe_lifespan(app):
    """Run an ASGI app's lifespan startup and shutdown once, in a loop of
    its own (the deploy's preflight; the zygote, in a child, before it says
    ready): a startup that fails raises LifespanFailed."""
    import asyncio
    ls = Lifespan(app)

    async def cycle():
        await ls.startup()
        await ls.shutdown()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(cycle())
    finally:
        loop.close()
