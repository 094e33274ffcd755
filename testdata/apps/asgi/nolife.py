"""An ASGI app that knows HTTP only: it raises on the lifespan scope, so
it runs without lifespan."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("this app serves HTTP only, not %r" % scope["type"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"no lifespan here"})
