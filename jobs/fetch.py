"""HTTP fetching for feeds and article pages: conditional GET, size cap, redirects, and the
server's Retry-After, with every failure turned into a `FetchResult.error` string.

Redirects are followed here, not by aiohttp, on one path for trusted and untrusted requests:
an untrusted (chat-added) request checks every hop's URL with its `PublicOnly` policy before
that hop is requested, and its session's connector checks the addresses it resolves and dials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from yarl import URL

from jobs.public_only import PrivateAddressRefused, PublicOnly, url_problem

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None
    retry_after: float | None = None
    error: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class PublicOnlySession:
    """A session whose connector was built by `policy` (see `open_fetcher`): the policy checks
    each hop's URL, the connector what the name resolves to and the address dialled."""

    session: aiohttp.ClientSession
    policy: PublicOnly


class BodyTooLarge(Exception):
    pass


class _Refused(Exception):
    """A hop that is not requested (not http(s), or refused by the policy); the message is the
    `FetchResult.error`."""


@asynccontextmanager
async def open_fetcher(
    *,
    user_agent: str,
    request_timeout: float,
    max_bytes: int,
    limit: int,
    limit_per_host: int,
    public_only: PublicOnly | None,
) -> AsyncIterator[Fetcher]:
    """The fetcher and its sessions, closed on exit; `request_timeout` covers one whole `get`.
    With `public_only` (production passes `PublicOnly()` unless the operator allows private
    sources) untrusted requests get their own session, whose connector enforces the policy;
    without it they share the trusted one."""
    async with AsyncExitStack() as stack:
        trusted = aiohttp.TCPConnector(
            limit=limit, limit_per_host=limit_per_host, ttl_dns_cache=300
        )
        session = await stack.enter_async_context(_session(trusted, user_agent))
        public = None
        if public_only is not None:
            connector = public_only.connector(limit=limit, limit_per_host=limit_per_host)
            public_session = await stack.enter_async_context(_session(connector, user_agent))
            public = PublicOnlySession(public_session, public_only)
        yield Fetcher(session, timeout=request_timeout, max_bytes=max_bytes, public=public)


def _session(connector: aiohttp.BaseConnector, user_agent: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector, headers={"User-Agent": user_agent}, auto_decompress=True
    )


class Fetcher:
    """One aiohttp session's worth of fetching (two with `public`). The connector enforces the
    global and per-host connection limits; the timeout covers the whole exchange, every
    redirect and the body included."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        max_bytes: int,
        public: PublicOnlySession | None = None,
    ) -> None:
        """`public` serves `public_only` requests; without it they use `session` (the operator
        allowed private sources)."""
        self.session = session
        self.public = public
        self.total = timeout
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(timeout, 10.0))
        self.max_bytes = max_bytes

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        public_only: bool = False,
    ) -> FetchResult:
        public = self.public if public_only else None
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with asyncio.timeout(self.total):
                return await self._follow(url, headers, public)
        except _Refused as exc:
            log.warning("request refused", extra={"url": url, "error": str(exc)})
            return FetchResult(url=url, error=str(exc))
        except BodyTooLarge:
            return FetchResult(url=url, error=f"response larger than {_mb(self.max_bytes)}")
        except TimeoutError:
            return FetchResult(url=url, error=f"timed out after {self.total:g} s")
        except aiohttp.InvalidURL as exc:
            return FetchResult(url=url, error=f"invalid URL: {exc}")
        except aiohttp.ClientError as exc:
            return FetchResult(url=url, error=f"{type(exc).__name__}: {exc}".strip())
        except (OSError, ValueError) as exc:
            return FetchResult(url=url, error=f"{type(exc).__name__}: {exc}")

    async def _follow(
        self, url: str, headers: Mapping[str, str], public: PublicOnlySession | None
    ) -> FetchResult:
        """Request `url` and each redirect target in turn, every hop checked before it is
        requested. `moved_to` is the final URL only when every hop was permanent."""
        session = self.session if public is None else public.session
        hop = URL(url)
        permanent = True
        for redirects in range(MAX_REDIRECTS + 1):
            problem = url_problem(hop)
            if problem is not None:
                raise _Refused(f"cannot fetch {_hop_label(hop, redirects)}: {problem}")
            refusal = None if public is None else public.policy.url_refusal(hop)
            if refusal is not None:
                raise _Refused(f"refused {_hop_label(hop, redirects)}: {refusal}")
            try:
                async with session.get(
                    hop, headers=headers, timeout=self.timeout, allow_redirects=False
                ) as response:
                    location = response.headers.get("Location")
                    if response.status not in REDIRECTS or not location:
                        moved_to = str(hop) if redirects and permanent else None
                        return await self._result(url, response, moved_to)
                    permanent = permanent and response.status in PERMANENT_REDIRECTS
                    target = hop.join(URL(location)).with_fragment(None)
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, PrivateAddressRefused):
                    raise _Refused(f"refused {_hop_label(hop, redirects)}: {exc.os_error}") from exc
                raise
            hop = target
        return FetchResult(url=url, error=f"too many redirects (more than {MAX_REDIRECTS})")

    async def _result(
        self, url: str, response: aiohttp.ClientResponse, moved_to: str | None
    ) -> FetchResult:
        if response.status == 304:
            return FetchResult(url=url, status=304, moved_to=moved_to)
        if response.status >= 400:
            return FetchResult(
                url=url,
                status=response.status,
                moved_to=moved_to,
                retry_after=_retry_after(response),
                error=f"HTTP {response.status} {response.reason or ''}".rstrip(),
            )
        body = await self._read_capped(response)
        return FetchResult(
            url=url,
            status=response.status,
            body=body,
            content_type=response.headers.get("Content-Type"),
            etag=response.headers.get("ETag"),
            last_modified=response.headers.get("Last-Modified"),
            moved_to=moved_to,
        )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        if declared is not None and declared > self.max_bytes:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
        return b"".join(chunks)


def _hop_label(hop: URL, redirects: int) -> str:
    """The hop as an error names it: its URL without credentials, and which redirect."""
    shown = str(hop.with_user(None)) if hop.host else str(hop)
    return shown if redirects == 0 else f"redirect {redirects} to {shown}"


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    if response.status not in RETRY_AFTER_STATUSES:
        return None
    return parse_retry_after(response.headers.get("Retry-After"))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"
