"""A Starlette app for the ASGI tests: lifespan state, a streaming
response, an upload's checksum, a request that waits for the client to go,
and one that sleeps."""
import asyncio
import contextlib
import hashlib
import os

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

HERE = os.path.dirname(os.path.abspath(__file__))


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan", "started_in": os.getpid()}
    with open(os.path.join(HERE, "shutdown-%d" % os.getpid()), "w") as f:
        f.write("lifespan shutdown ran\n")


async def home(request):
    return JSONResponse({"greeting": request.state.greeting, "started_in": request.state.started_in,
                         "pid": os.getpid(), "path": request.url.path, "root_path": request.scope["root_path"],
                         "scheme": request.url.scheme, "query": dict(request.query_params),
                         "client": list(request.client) if request.client else None})


async def stream(request):
    n = int(request.query_params.get("n", "5"))
    delay = float(request.query_params.get("delay", "0.01"))

    async def chunks():
        for i in range(n):
            yield ("chunk %d\n" % i).encode()
            await asyncio.sleep(delay)
    return StreamingResponse(chunks(), media_type="text/plain")


async def upload(request):
    h = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        h.update(chunk)
        size += len(chunk)
    return JSONResponse({"sha256": h.hexdigest(), "size": size})


async def wait_gone(request):
    # Waits for the client to go (nginx closes the connection): the app
    # must see http.disconnect.
    while True:
        msg = await request.receive()
        if msg["type"] == "http.disconnect":
            with open(os.path.join(HERE, "disconnected"), "a") as f:
                f.write("http.disconnect\n")
            return PlainTextResponse("gone")


async def sleep(request):
    await asyncio.sleep(float(request.query_params.get("s", "0.5")))
    return PlainTextResponse("slept %d\n" % os.getpid())


async def boom(request):
    raise RuntimeError("boom in an ASGI view")


app = Starlette(lifespan=lifespan, routes=[
    Route("/", home), Route("/stream", stream), Route("/upload", upload, methods=["POST"]),
    Route("/wait-gone", wait_gone), Route("/sleep", sleep), Route("/boom", boom),
])
