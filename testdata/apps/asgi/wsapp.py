"""A bare ASGI WebSocket app for the tests: /echo echoes text and bytes
(choosing the "echo.v2" subprotocol when offered), "close CODE" makes it
close with CODE; /deny refuses the handshake with a 403 page; /private
refuses it by closing before accepting; /version says which code runs.
Each WebSocket's disconnect code is appended to ./disconnects."""
import os

VERSION = "v1"
HERE = os.path.dirname(os.path.abspath(__file__))


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": VERSION.encode()})
        return
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"no WebSockets for you\n"})
        return
    if path == "/private":
        await send({"type": "websocket.close", "code": 1008})
        return
    sub = "echo.v2" if "echo.v2" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": sub})
    if path == "/version":
        await send({"type": "websocket.send", "text": VERSION})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            with open(os.path.join(HERE, "disconnects"), "a") as f:
                f.write("%d\n" % msg["code"])
            return
        text = msg.get("text")
        if text is not None and text.startswith("close "):
            await send({"type": "websocket.close", "code": int(text.split()[1]), "reason": "asked to"})
            return
        await send({"type": "websocket.send", "text": text, "bytes": msg.get("bytes")} if text is not None else
                   {"type": "websocket.send", "bytes": msg.get("bytes")})
