"""An aiohttp app served on 127.0.0.1 (a free port) from its own thread and event loop.

The base of the tests' servers for boundaries we do not own (the scripted judge, the fake
Argilla API): a test starts one, talks to it over real HTTP, and stops it.
"""

from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web


class ThreadedServer:
    #: Named in the error when the server does not come up.
    server_name = "local test server"

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> str:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.server_name} did not start")
        return self.root_url

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.root_url = f"http://127.0.0.1:{self.port}"
        self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
        self._stopping = asyncio.Event()  # handlers that wait forever watch it, so cleanup is not held up
        ready.set()
        self._loop.run_forever()

    def stop(self) -> None:
        async def shutdown() -> None:
            self._stopping.set()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
