import asyncio, sys, websockets
async def main(port):
    async with websockets.connect("ws://ws.test/echo", host="127.0.0.1", port=port, subprotocols=["echo.v2"], max_size=None) as ws:
        print("subprotocol", ws.subprotocol)
        await ws.send("hello"); print(await ws.recv())
        await ws.send(b"\x00\x01" * 10); print(await ws.recv())
        big = b"x" * (1 << 20); await ws.send(big); r = await ws.recv(); print("1MB", len(r), r == big)
        await ws.send(["frag", "mented"]); print(await ws.recv())
        pong = await ws.ping(b"hi"); await pong; print("pong ok")
        await ws.send("close 4001")
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code if e.rcvd else None, e.rcvd.reason if e.rcvd else None)
asyncio.run(main(int(sys.argv[1])))
