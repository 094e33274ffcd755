"""A bare ASGI app that says which Python runs it (HTTP), echoes over a
WebSocket with that version in front, and uses lifespan state: standard
library only, for every Python 3.8+."""
import sys

VERSION = "%d.%d" % sys.version_info[:2]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                scope["state"]["python"] = VERSION
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        body = ("%s %s" % (VERSION, scope["state"].get("python"))).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()
    await send({"type": "websocket.accept"})
    msg = await receive()
    await send({"type": "websocket.send", "text": VERSION + " " + msg["text"]})
    await send({"type": "websocket.close", "code": 1000})
