"""WebSocket scenarios with a real client (Debian's python3-websockets)
through nginx, for TestWebSocketScenarios. argv[1]: nginx's port;
argv[2]: the scenario. Prints what it saw, one line per fact."""
import asyncio
import sys

import websockets

PORT = int(sys.argv[1])


def url(path):
    return "ws://ws.test" + path


async def connect(path, **kw):
    return await websockets.connect(url(path), host="127.0.0.1", port=PORT, max_size=None, open_timeout=10, **kw)


async def many():
    # 500 sockets open at once on one worker, each echoing its own number.
    socks = await asyncio.gather(*[connect("/echo") for _ in range(500)])
    await asyncio.gather(*[ws.send("n%d" % i) for i, ws in enumerate(socks)])
    got = await asyncio.gather(*[ws.recv() for ws in socks])
    print("echoed", sum(g == "n%d" % i for i, g in enumerate(got)), "of", len(socks))
    await asyncio.gather(*[ws.close() for ws in socks])


async def denied():
    for path in ("/deny", "/private"):
        try:
            await connect(path)
            print(path, "accepted")
        except websockets.InvalidStatusCode as e:
            print(path, "refused", e.status_code)


async def client_close():
    ws = await connect("/echo")
    await ws.send("x")
    await ws.recv()
    await ws.close(code=4321, reason="the client is done")
    print("closed", ws.close_code)


async def too_big():
    ws = await connect("/echo")
    try:
        await ws.send(b"\0" * (int(sys.argv[3]) + 1))
        await ws.recv()
    except websockets.ConnectionClosed as e:
        print("closed", e.rcvd.code if e.rcvd else None)


async def reload():
    # Sockets stay open across the daemon's reload until it closes them
    # with 1001; a new one then reaches the new code.
    socks = [await connect("/version") for _ in range(20)]
    first = await asyncio.gather(*[ws.recv() for ws in socks])
    print("before", sorted(set(first)))
    print("open", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    codes = []
    for ws in socks:
        try:
            await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed as e:
            codes.append(e.rcvd.code if e.rcvd else None)
    print("closed with", sorted(set(codes)), len(codes))
    ws = await connect("/version")
    print("after", await ws.recv())
    await ws.close()

async def idle():
    # An idle socket, longer than nginx's uwsgi_read_timeout: open still?
    # (The client's own keepalive pings are off: only the server's count.)
    ws = await connect("/echo", ping_interval=None)
    await asyncio.sleep(float(sys.argv[3]))
    try:
        await ws.send("still there?")
        print("echo", await asyncio.wait_for(ws.recv(), 5))
        await ws.close()
    except (websockets.ConnectionClosed, asyncio.TimeoutError) as e:
        print("closed", type(e).__name__)

asyncio.run(globals()[sys.argv[2]]())
