"""An ASGI app whose lifespan startup fails (its database is down)."""
from starlette.applications import Starlette


async def connect():
    raise ConnectionRefusedError("cannot reach the database at 127.0.0.1:1")


app = Starlette(on_startup=[connect])
