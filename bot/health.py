"""Process health for an orchestrator and a Prometheus server, on a port of its own
(AINEWS_HEALTH_PORT), separate from Slack's HTTP-mode listener: a probe must answer even when
Slack runs in Socket Mode, or no chat platform is configured at all.

- `GET /healthz`: liveness. 200 while the event loop answers; nothing else is checked, so a
  database outage never gets a healthy process restarted.
- `GET /readyz`: readiness. 200 when the database is reachable and its schema is at this
  version's head; 503 with the reason otherwise, and from the moment shutdown begins.
- `GET /metrics`: Prometheus text exposition of this process's metrics (`bot/metrics.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics
from bot.publishing.platform import StartupError
from storage.db import Database
from storage.migrate import schema_problem

log = logging.getLogger(__name__)

# A readiness probe that waits longer than this has its answer: not ready.
READY_CHECK_TIMEOUT = 5.0


class HealthServer:
    def __init__(
        self, *, db: Database, metrics: Metrics, stopping: asyncio.Event | None = None
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.stopping = stopping or asyncio.Event()
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: any free port); returns the port bound."""
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("health listening", extra={"host": host, "port": self.port})
        return self.port

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def problem(self) -> str | None:
        """Why this process is not ready, or None."""
        if self.stopping.is_set():
            return "shutting down"
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(schema_problem, self.db.engine), READY_CHECK_TIMEOUT
            )
        except TimeoutError:
            return f"database check timed out after {READY_CHECK_TIMEOUT:g} s"

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _readyz(self, _: web.Request) -> web.Response:
        problem = await self.problem()
        if problem is None:
            return web.json_response({"ready": True})
        log.warning("not ready", extra={"reason": problem})
        return web.json_response({"ready": False, "reason": problem}, status=503)

    async def _metrics(self, _: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


@asynccontextmanager
async def serve_health(
    *,
    db: Database,
    metrics: Metrics,
    host: str,
    port: int | None,
    stopping: asyncio.Event | None = None,
) -> AsyncIterator[HealthServer | None]:
    """The health endpoints for as long as the block runs; nothing when `port` is None
    (AINEWS_HEALTH_PORT unset). `stopping`, once set, makes `/readyz` answer 503."""
    if port is None:
        yield None
        return
    server = HealthServer(db=db, metrics=metrics, stopping=stopping)
    try:
        await server.start(host, port)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        await server.close()
        raise StartupError(
            f"AINEWS_HEALTH_PORT: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    try:
        yield server
    finally:
        await server.close()
