"""The demo's local feed server: serves the sample feeds and article pages shipped in the repo
over real HTTP, so `ainews demo` exercises the production poller (validators included)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from bot.demo.local_server import LocalServer

DEMO_DIR = Path(__file__).resolve().parent
BASE_URL_PLACEHOLDER = "{{BASE_URL}}"


class DemoFeedServer(LocalServer):
    def __init__(self, directory: Path = DEMO_DIR) -> None:
        super().__init__()
        self.directory = directory

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{kind:feeds|pages}/{name}", self._serve)
        return app

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
