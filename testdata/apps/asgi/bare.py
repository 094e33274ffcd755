"""A bare ASGI 3 app (no framework): a hello, and the scope it was given."""
import json


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                scope["state"]["ready"] = True
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    out = {k: v for k, v in scope.items() if k not in ("headers", "raw_path", "query_string", "state")}
    out["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
    out["raw_path"] = scope["raw_path"].decode("latin-1")
    out["query_string"] = scope["query_string"].decode("latin-1")
    out["state"] = dict(scope["state"])
    out["body"] = body.decode("latin-1")
    data = json.dumps(out).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})
