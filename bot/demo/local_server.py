"""An aiohttp application served on 127.0.0.1 at an ephemeral port, as an async context
manager. The demo's feed server is one; so are the tests' stand-in servers."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web


class LocalServer:
    """Subclasses build the application; this class binds, reports `base_url` and shuts down.
    `handler_cancellation` cancels a handler whose client went away (a timeout, an early
    close), as a real server does, which also keeps teardown fast."""

    def __init__(self, *, shutdown_timeout: float = 0.5) -> None:
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    def build_app(self) -> web.Application:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        runner = web.AppRunner(
            self.build_app(),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        self._runner = runner
        self._base_url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening and drop open connections; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @property
    def base_url(self) -> str:
        """Root URL such as ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._base_url is None:
            raise RuntimeError(f"{type(self).__name__} is not running; use `async with`")
        return self._base_url

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"
