"""HTTP fetching for feeds and article pages: conditional GET, size cap, redirects, and the
server's Retry-After, with every failure turned into a `FetchResult.error` string."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from jobs.public_only import PrivateAddressRefused, literal_address_reason

MAX_REDIRECTS = 5
PERMANENT_REDIRECTS = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})


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


class BodyTooLarge(Exception):
    pass


class Fetcher:
    """One aiohttp session's worth of fetching. The connector enforces the global and per-host
    connection limits; the timeout covers the whole exchange including the body."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float,
        max_bytes: int,
        public_session: aiohttp.ClientSession | None = None,
    ) -> None:
        """`public_session` (its resolver refuses private addresses, see jobs.public_only)
        serves `public_only` requests; without it they use `session` (operator's choice)."""
        self.session = session
        self.public_session = public_session
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self.max_bytes = max_bytes

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        public_only: bool = False,
    ) -> FetchResult:
        session = self.session
        if public_only and self.public_session is not None:
            session = self.public_session
            refused = literal_address_reason(url)
            if refused:
                return FetchResult(url=url, error=f"refused: {refused}")
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        try:
            async with session.get(
                url,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=True,
                max_redirects=MAX_REDIRECTS,
            ) as response:
                moved_to = _permanent_target(response)
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
        except BodyTooLarge:
            return FetchResult(url=url, error=f"response larger than {_mb(self.max_bytes)}")
        except aiohttp.TooManyRedirects:
            return FetchResult(url=url, error=f"too many redirects (more than {MAX_REDIRECTS})")
        except TimeoutError:
            return FetchResult(url=url, error=f"timed out after {self.timeout.total:g} s")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PrivateAddressRefused):
                return FetchResult(url=url, error=str(exc.os_error))
            return FetchResult(url=url, error=f"{type(exc).__name__}: {exc}".strip())
        except aiohttp.InvalidURL as exc:
            return FetchResult(url=url, error=f"invalid URL: {exc}")
        except aiohttp.ClientError as exc:
            return FetchResult(url=url, error=f"{type(exc).__name__}: {exc}".strip())
        except (OSError, ValueError) as exc:
            return FetchResult(url=url, error=f"{type(exc).__name__}: {exc}")

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


def _permanent_target(response: aiohttp.ClientResponse) -> str | None:
    """The new address when every hop was permanent (a temporary hop means keep the old one)."""
    if response.history and all(r.status in PERMANENT_REDIRECTS for r in response.history):
        return str(response.url)
    return None


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
