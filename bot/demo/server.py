"""The demo's local feed server: serves the sample feeds and article pages shipped in the repo
over real HTTP, so `ainews demo` exercises the production poller (validators included)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import TracebackType

from aiohttp import web

DEMO_DIR = Path(__file__).resolve().parent
BASE_URL_PLACEHOLDER = "{{BASE_URL}}"


class DemoFeedServer:
    def __init__(self, directory: Path = DEMO_DIR) -> None:
        self.directory = directory
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> DemoFeedServer:
        app = web.Application()
        app.router.add_get("/{kind:feeds|pages}/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        kind, name = request.match_info["kind"], request.match_info["name"]
        path = (self.directory / kind / name).resolve()
        if path.parent != (self.directory / kind).resolve() or not path.is_file():
            raise web.HTTPNotFound()
        body = path.read_bytes().replace(BASE_URL_PLACEHOLDER.encode(), self.base_url.encode())
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        content_type = "text/html" if kind == "pages" else "application/xml"
        return web.Response(
            body=body, headers={"ETag": etag, "Content-Type": f"{content_type}; charset=utf-8"}
        )
