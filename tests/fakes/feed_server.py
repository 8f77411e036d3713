"""A real-TCP stand-in for the RSS/Atom publishers the poller talks to.

The feed poller's interesting behaviour lives at the HTTP layer: conditional GET, back-off on
429/503, redirect handling, refusing giant bodies and giving up on slow hosts. Mocking the
client library would test our assumptions about it rather than the behaviour, so the tests
point the real client at this server instead. It binds 127.0.0.1 on an ephemeral port, so
tests can run in parallel without colliding, and it records every request so tests can assert
on what the client actually sent (validators, User-Agent, how often it retried).

Each path is configured independently; configuring a path again replaces its behaviour, which
lets a test change a feed between two polls.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from multidict import CIMultiDict

from bot.demo.local_server import LocalServer

__all__ = [
    "DEFAULT_LAST_MODIFIED",
    "RSS_CONTENT_TYPE",
    "Call",
    "FeedServer",
    "Response",
]

RSS_CONTENT_TYPE: Final = "application/rss+xml; charset=utf-8"

# A fixed, whole-second date: deterministic across runs, and HTTP dates have no sub-second
# precision, so anything finer would make If-Modified-Since comparisons flaky.
DEFAULT_LAST_MODIFIED: Final = datetime(2024, 1, 1, 9, 0, 0, tzinfo=UTC)

_AUTO: Final = "auto"
_HUGE_CHUNK_TARGET: Final = 64 * 1024

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the server saw it, so tests can assert on what the client really sent.

    Headers are flattened to a plain dict with lower-case keys because HTTP header names are
    case-insensitive and tests should not depend on the client's capitalisation.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str] = field(hash=False)
    at: float
    """`time.monotonic()` when the request arrived; lets tests measure back-off delays."""


@dataclass(frozen=True, slots=True)
class Response:
    """A canned response used by `FeedServer.sequence` (and internally by `status`).

    Kept as plain data so a test can script "429 then 200" without touching aiohttp types.
    """

    status: int = 200
    body: bytes | str = b""
    headers: Mapping[str, str] | None = None
    content_type: str | None = RSS_CONTENT_TYPE
    """`None` sends no Content-Type at all (a headers entry always wins)."""
    delay: float = 0.0
    """Seconds to sleep before answering, for scripting "slow, then fine"."""

    def to_web(self) -> web.Response:
        """Build the aiohttp response; explicit headers override `content_type`."""
        headers: CIMultiDict[str] = CIMultiDict(self.headers or {})
        if self.content_type is not None and "Content-Type" not in headers:
            headers["Content-Type"] = self.content_type
        return web.Response(status=self.status, body=_to_bytes(self.body), headers=headers)


@dataclass(frozen=True, slots=True)
class _Resource:
    """A normal feed document with its validators, fixed at `add` time."""

    body: bytes
    content_type: str
    etag: str | None
    last_modified: datetime | None


class FeedServer(LocalServer):
    """An aiohttp server that serves feeds and injects per-path faults.

    Use as ``async with FeedServer() as srv:``; the server listens only inside the block.
    Any path that was never configured answers 404, so a typo in a test fails loudly.
    """

    def __init__(self, *, shutdown_timeout: float = 0.5) -> None:
        """Create a stopped server.

        `shutdown_timeout` bounds how long leaving the ``async with`` waits for in-flight
        handlers (e.g. a `slow` path the client abandoned) so a test never hangs on teardown.
        """
        super().__init__(shutdown_timeout=shutdown_timeout)
        self.calls: list[Call] = []
        self.latency: float = 0.0
        """Extra seconds added before every response, to model a distant host."""
        self.disconnects: list[str] = []
        """Paths whose response was abandoned by the client mid-way (slow or huge bodies)."""
        self._routes: dict[str, _Handler] = {}

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def url(self, path: str) -> str:
        """Absolute URL for `path` on this server (a leading slash is optional)."""
        return self.base_url + _norm(path)

    def calls_to(self, path: str) -> list[Call]:
        """Requests made to exactly `path` (query string ignored), in arrival order."""
        want = _norm(path).split("?", 1)[0]
        return [c for c in self.calls if c.path == want]

    def clear_calls(self) -> None:
        """Forget recorded requests, e.g. between the warm-up poll and the one under test."""
        self.calls.clear()

    # -- configuration ---------------------------------------------------------------------

    def add(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = RSS_CONTENT_TYPE,
        etag: str | None = _AUTO,
        last_modified: datetime | None = DEFAULT_LAST_MODIFIED,
    ) -> str | None:
        """Serve `body` at `path` with validators, honouring conditional GET.

        ``etag="auto"`` derives a quoted SHA-1 of the body, so calling `add` again with new
        content changes the ETag exactly as a real publisher's would. Pass ``None`` for either
        validator to model servers that do not send it. Returns the ETag actually served so a
        test can compare it with what the client stored.
        """
        data = _to_bytes(body)
        tag = f'"{hashlib.sha1(data).hexdigest()}"' if etag == _AUTO else etag
        lm = None if last_modified is None else _as_utc(last_modified).replace(microsecond=0)
        resource = _Resource(data, content_type, tag, lm)

        async def handler(request: web.Request) -> web.StreamResponse:
            return _serve_resource(request, resource)

        self._routes[_norm(path)] = handler
        return tag

    def slow(
        self,
        path: str,
        body: bytes | str,
        delay: float,
        *,
        content_type: str = RSS_CONTENT_TYPE,
    ) -> None:
        """Answer 200 with `body` only after `delay` seconds, to exercise client timeouts.

        The wait is an `asyncio.sleep`, cancelled when the client disconnects; the path is
        then appended to `disconnects`.
        """
        reply = Response(200, body, content_type=content_type)

        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                self.disconnects.append(request.path)
                raise
            return reply.to_web()

        self._routes[_norm(path)] = handler

    def status(
        self,
        path: str,
        code: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
    ) -> None:
        """Always answer `code` (e.g. 500, 503, or 429 with ``{"Retry-After": "2"}``)."""
        self.sequence(path, [Response(code, body, headers=headers, content_type=None)])

    def sequence(self, path: str, responses: Sequence[Response]) -> None:
        """Answer with `responses` in order, repeating the last one forever.

        Models transient faults such as "429 Retry-After: 1, then 200 with the feed".
        Scripted responses are sent verbatim (no conditional-GET handling).
        """
        if not responses:
            raise ValueError("sequence() needs at least one response")
        script = list(responses)
        position = 0

        async def handler(request: web.Request) -> web.StreamResponse:
            nonlocal position
            reply = script[min(position, len(script) - 1)]
            position += 1
            if reply.delay > 0:
                await asyncio.sleep(reply.delay)
            return reply.to_web()

        self._routes[_norm(path)] = handler

    def redirect(
        self,
        path: str,
        to_path: str,
        *,
        permanent: bool,
        preserve_method: bool = False,
    ) -> None:
        """Redirect `path` to `to_path` (a path on this server or an absolute URL).

        ``permanent`` picks 301 (or 308 with ``preserve_method``) over 302 (or 307), so the
        poller's "update the stored URL on permanent redirect" rule can be tested.
        """
        code = (308 if permanent else 307) if preserve_method else (301 if permanent else 302)
        target = to_path if "://" in to_path else _norm(to_path)

        async def handler(request: web.Request) -> web.StreamResponse:
            location = target if "://" in target else self.url(target)
            return web.Response(status=code, headers={"Location": location})

        self._routes[_norm(path)] = handler

    def redirect_loop(self, path: str, *, via: str | None = None) -> None:
        """Make `path` redirect forever, to check the client caps its redirect chain.

        Without `via` each hop adds to a counter (``path`` → ``path?n=1`` → ``path?n=2`` …) so
        no URL repeats; with `via` the two paths bounce to each other (302).
        """
        if via is not None:
            self.redirect(path, via, permanent=False)
            self.redirect(via, path, permanent=False)
            return
        key = _norm(path)

        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                hop = int(request.query.get("n", "0"))
            except ValueError:
                hop = 0
            location = f"{self.url(key)}?n={hop + 1}"
            return web.Response(status=302, headers={"Location": location})

        self._routes[key] = handler

    def huge(
        self,
        path: str,
        size_bytes: int,
        *,
        content_type: str = RSS_CONTENT_TYPE,
    ) -> None:
        """Stream a feed-looking document of exactly `size_bytes` bytes.

        The body is generated chunk by chunk (RSS header, repeated ``<item>``s, closing tags)
        so a 20 MB test costs the server no memory, and it stops as soon as the client hangs
        up, recording the path in `disconnects`. Content-Length is sent, as real servers
        usually do, so clients may also reject it up front.
        """
        if size_bytes < 0:
            raise ValueError("size_bytes must be >= 0")

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(status=200)
            response.content_type = content_type.split(";", 1)[0].strip()
            if "charset=" in content_type:
                response.charset = content_type.split("charset=", 1)[1].strip()
            response.content_length = size_bytes
            try:
                await response.prepare(request)
                for chunk in _huge_chunks(size_bytes):
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, asyncio.CancelledError):
                # ConnectionResetError covers aiohttp's ClientConnectionResetError raised when
                # writing to a closed transport; cancellation is the handler being torn down.
                self.disconnects.append(request.path)
                raise
            return response

        self._routes[_norm(path)] = handler

    # -- request handling ------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        """Record the call, apply global latency, then route by exact path."""
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.calls.append(
            Call(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers=headers,
                at=time.monotonic(),
            )
        )
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        handler = self._routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="not found", content_type="text/plain")
        return await handler(request)


# -- helpers -------------------------------------------------------------------------------


def _serve_resource(request: web.Request, resource: _Resource) -> web.Response:
    """Return 200 or 304 following RFC 9110's conditional GET rules (weak ETag comparison)."""
    headers: CIMultiDict[str] = CIMultiDict()
    if resource.etag is not None:
        headers["ETag"] = resource.etag
    if resource.last_modified is not None:
        headers["Last-Modified"] = email.utils.format_datetime(resource.last_modified, usegmt=True)
    if _not_modified(request, resource):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = resource.content_type
    return web.Response(status=200, body=resource.body, headers=headers)


def _not_modified(request: web.Request, resource: _Resource) -> bool:
    """Evaluate If-None-Match first; If-Modified-Since only counts when it is absent."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        if resource.etag is None:
            return False
        tags = {_weak_strip(t) for t in inm.split(",") if t.strip()}
        return "*" in tags or _weak_strip(resource.etag) in tags
    ims = request.headers.get("If-Modified-Since")
    if ims is None or resource.last_modified is None:
        return False
    try:
        since = email.utils.parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False  # unparsable dates are ignored, per RFC 9110
    return _as_utc(since) >= resource.last_modified


def _weak_strip(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def _as_utc(moment: datetime) -> datetime:
    """Treat naive datetimes as UTC, since HTTP dates are always GMT."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _to_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def _norm(path: str) -> str:
    return path if path.startswith("/") else "/" + path


_HUGE_HEAD: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<rss version="2.0"><channel><title>Huge feed</title>'
    b"<link>http://example.invalid/</link><description>stress test</description>\n"
)
_HUGE_ITEM: Final = (
    b"<item><title>Filler item</title><link>http://example.invalid/item</link>"
    b"<description>" + b"lorem ipsum dolor sit amet " * 4 + b"</description></item>\n"
)
_HUGE_TAIL: Final = b"</channel></rss>\n"


def _huge_chunks(size: int) -> Iterator[bytes]:
    """Yield exactly `size` bytes of well-formed RSS, reusing one preallocated chunk.

    Whitespace pads the gap left by a whole number of items, so the document stays valid XML
    at any size that fits the header and closing tags (smaller sizes are simply truncated).
    """
    frame = len(_HUGE_HEAD) + len(_HUGE_TAIL)
    if size < frame:
        if size:
            yield (_HUGE_HEAD + _HUGE_TAIL)[:size]
        return
    yield _HUGE_HEAD
    items_total, padding = divmod(size - frame, len(_HUGE_ITEM))
    per_chunk = max(1, _HUGE_CHUNK_TARGET // len(_HUGE_ITEM))
    chunk = _HUGE_ITEM * per_chunk
    full, rest = divmod(items_total, per_chunk)
    for _ in range(full):
        yield chunk
    if rest:
        yield _HUGE_ITEM * rest
    if padding:
        yield b" " * padding
    yield _HUGE_TAIL
