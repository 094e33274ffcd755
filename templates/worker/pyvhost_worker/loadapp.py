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
