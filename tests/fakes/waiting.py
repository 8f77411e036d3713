"""What every stand-in server shares: waiting for a recorded call, and headers as recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final, TypeVar

from aiohttp import web

POLL_INTERVAL: Final = 0.005
_T = TypeVar("_T")


async def poll(probe: Callable[[], _T | None], timeout: float, describe: Callable[[], str]) -> _T:
    """Re-check `probe` every few ms until it returns something, or raise `TimeoutError`
    naming what was waited for (`describe()` says what did arrive)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {describe()}")
        await asyncio.sleep(POLL_INTERVAL)


def lower_headers(request: web.Request) -> dict[str, str]:
    """Request headers with lower-case names; repeated headers joined as HTTP allows."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers
