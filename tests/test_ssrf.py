"""SSRF closed on every hop: chat-added (untrusted) requests never reach a non-public address,
whether it is the source's own URL, a redirect target or a teaser's article page.

Every refused address is refused before a socket connects. For 169.254.169.254 and 10.0.0.1
the conftest network guard would raise on any connect; for loopback targets a "secret" server
on 127.0.0.1 and [::1] records every connection it accepts and must see none. The publisher's
stand-in has to live on 127.0.0.1 too, so the policy under test is told that exactly that
(address, port) counts as public (`also_public`); every other loopback port stays refused.
Names are mapped by an in-process resolver (`MapResolver`), so no DNS query leaves the test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Self

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from sqlmodel import Session, select
from yarl import URL

from bot.app import open_app
from jobs.fetch import Fetcher, open_fetcher
from jobs.poll import poll_sources
from jobs.public_only import PrivateAddressRefused, PublicOnly, literal_address_reason
from storage.models import Article, Source
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import TEST_FEEDS, make_settings
from tests.fakes.feed_server import FeedServer, Response

SECRET = (
    b"<html><head><title>metadata</title></head><body><article><p>"
    + b"TOP SECRET instance credentials: AKIA-not-for-chat. " * 12
    + b"</p></article></body></html>"
)


class SecretServer:
    """What an attacker wants read back: one port on both 127.0.0.1 and [::1]. It records
    every connection it accepts (not only requests), and answers any request with `SECRET`."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.port = 0
        self._servers: list[asyncio.Server] = []

    async def __aenter__(self) -> Self:
        for _ in range(20):  # the IPv4 port may be taken on ::1 by someone else: try another
            v4 = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            port = int(v4.sockets[0].getsockname()[1])
            try:
                v6 = await asyncio.start_server(self._serve, "::1", port)
            except OSError:
                v4.close()
                await v4.wait_closed()
                continue
            self._servers, self.port = [v4, v6], port
            return self
        raise RuntimeError("no port free on both 127.0.0.1 and ::1")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self.connections.append((str(peer[0]), int(peer[1])))
        try:
            await reader.readuntil(b"\r\n\r\n")
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(SECRET)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + SECRET)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class MapResolver(AbstractResolver):
    """Answers the names it was given without DNS and asks the system for the rest (the
    network guard lets only loopback names through); records every lookup."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        addresses = self.names.get(host)
        if addresses is None:
            return await ThreadedResolver().resolve(host, port, family)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
async def secret() -> AsyncIterator[SecretServer]:
    async with SecretServer() as server:
        yield server


@pytest.fixture
def resolver() -> MapResolver:
    return MapResolver(
        {
            "feeds.test": ["127.0.0.1"],  # the publisher, by name
            "evil.test": ["127.0.0.1"],
            "mixed.test": ["127.0.0.1", "10.0.0.1"],  # one allowed answer, one private
        }
    )


def origin_port(server: FeedServer) -> int:
    port = URL(server.base_url).port
    assert port is not None
    return port


def policy_for(server: FeedServer, resolver: MapResolver | None = None) -> PublicOnly:
    """Production's policy, except that the publisher's stand-in (127.0.0.1 at its port)
    counts as public."""
    return PublicOnly(resolver=resolver, also_public=[("127.0.0.1", origin_port(server))])


@pytest.fixture
async def fetcher(feed_server: FeedServer, resolver: MapResolver) -> AsyncIterator[Fetcher]:
    async with open_fetcher(
        user_agent="ainews-test",
        request_timeout=2.0,
        max_bytes=1_000_000,
        limit=10,
        limit_per_host=4,
        public_only=policy_for(feed_server, resolver),
    ) as fetcher:
        yield fetcher


V4_MAPPED = ipaddress.ip_address("::ffff:127.0.0.1")  # its str() differs across Pythons
CREDENTIALS = "a URL with a user name or password is not fetched for a chat-added source"

# (id, target with {secret} for the secret server's port, the shown URL, the reason)
REFUSED = [
    (
        "loopback",
        "http://127.0.0.1:{secret}/secret",
        "http://127.0.0.1:{secret}/secret",
        "127.0.0.1 is not a public address (loopback)",
    ),
    (
        "ipv6-loopback",
        "http://[::1]:{secret}/secret",
        "http://[::1]:{secret}/secret",
        "::1 is not a public address (loopback)",
    ),
    (
        "cloud-metadata",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://169.254.169.254/latest/meta-data/iam/",
        "169.254.169.254 is not a public address (link-local)",
    ),
    (
        "private",
        "http://10.0.0.1/admin",
        "http://10.0.0.1/admin",
        "10.0.0.1 is not a public address (private)",
    ),
    (
        "name-to-loopback",
        "http://evil.test:{secret}/secret",
        "http://evil.test:{secret}/secret",
        "evil.test resolves to 127.0.0.1, which is not a public address (loopback)",
    ),
    (
        "name-with-one-private-answer",
        "http://mixed.test:{origin}/feed.xml",
        "http://mixed.test:{origin}/feed.xml",
        "mixed.test resolves to 10.0.0.1, which is not a public address (private)",
    ),
    (
        "decimal-ipv4",
        "http://2130706433:{secret}/secret",
        "http://2130706433:{secret}/secret",
        "127.0.0.1 is not a public address (loopback)",
    ),
    (
        "ipv4-mapped-ipv6",
        "http://[::ffff:127.0.0.1]:{secret}/secret",
        f"http://[{V4_MAPPED}]:{{secret}}/secret",
        f"{V4_MAPPED} is not a public address (loopback)",
    ),
    (
        "userinfo-trick",
        "http://feeds.test:{origin}@127.0.0.1:{secret}/secret",
        "http://127.0.0.1:{secret}/secret",
        CREDENTIALS,
    ),
    (
        "credentials-to-an-allowed-host",
        "http://user:hunter2@127.0.0.1:{origin}/feed.xml",
        "http://127.0.0.1:{origin}/feed.xml",
        CREDENTIALS,
    ),
]


@pytest.mark.parametrize("via_redirect", [True, False], ids=["redirect", "source-url"])
@pytest.mark.parametrize(
    ("target", "shown", "reason"), [case[1:] for case in REFUSED], ids=[c[0] for c in REFUSED]
)
async def test_untrusted_requests_never_reach_a_non_public_address(
    fetcher: Fetcher,
    feed_server: FeedServer,
    secret: SecretServer,
    target: str,
    shown: str,
    reason: str,
    via_redirect: bool,
) -> None:
    ports = {"secret": secret.port, "origin": origin_port(feed_server)}
    target, shown = target.format(**ports), shown.format(**ports)
    feed_server.add("/feed.xml", (TEST_FEEDS / "rss2_ja.xml").read_bytes())
    feed_server.redirect("/go", target, permanent=False)
    url = feed_server.url("/go") if via_redirect else target

    result = await fetcher.get(url, public_only=True)

    hop = f"redirect 1 to {shown}" if via_redirect else shown
    assert result.error == f"refused {hop}: {reason}"
    assert "hunter2" not in result.error
    assert (result.status, result.body, result.moved_to) == (None, b"", None)
    assert secret.connections == []
    assert feed_server.calls_to("/feed.xml") == []
    assert len(feed_server.calls_to("/go")) == (1 if via_redirect else 0)


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("file:///etc/passwd", "only http:// and https:// URLs can be sources"),
        ("gopher://127.0.0.1:6379/_FLUSHALL", "only http:// and https:// URLs can be sources"),
    ],
)
@pytest.mark.parametrize("public_only", [True, False], ids=["untrusted", "trusted"])
async def test_a_redirect_to_another_scheme_is_not_followed(
    fetcher: Fetcher, feed_server: FeedServer, target: str, reason: str, public_only: bool
) -> None:
    feed_server.redirect("/go", target, permanent=True)
    result = await fetcher.get(feed_server.url("/go"), public_only=public_only)
    assert result.error == f"cannot fetch redirect 1 to {target}: {reason}"


@pytest.mark.parametrize("public_only", [True, False], ids=["untrusted", "trusted"])
async def test_redirects_between_allowed_hops_and_moved_to(
    fetcher: Fetcher, feed_server: FeedServer, public_only: bool
) -> None:
    """One redirect path for both kinds of source: permanent chains move the source (relative
    Locations resolved against their hop), a temporary hop keeps it, validators are sent on
    every hop, and Retry-After is read from the final answer."""
    feed = (TEST_FEEDS / "rss2_ja.xml").read_bytes()
    etag = feed_server.add("/c.xml", feed)
    feed_server.redirect("/a", feed_server.url("/b"), permanent=True)
    relative = Response(308, headers={"Location": "c.xml#top"}, content_type=None)
    feed_server.sequence("/b", [relative])
    feed_server.redirect("/t", "/u", permanent=True)
    feed_server.redirect("/u", "/c.xml", permanent=False)
    feed_server.redirect("/r", "/busy", permanent=False)
    feed_server.status("/busy", 429, headers={"Retry-After": "120"})

    moved = await fetcher.get(feed_server.url("/a"), public_only=public_only)
    assert moved.error is None
    assert (moved.status, moved.body, moved.etag) == (200, feed, etag)
    assert moved.moved_to == feed_server.url("/c.xml")
    assert moved.url == feed_server.url("/a")

    again = await fetcher.get(feed_server.url("/a"), etag=etag, public_only=public_only)
    assert again.not_modified and again.moved_to == feed_server.url("/c.xml")
    assert feed_server.calls_to("/c.xml")[-1].headers["if-none-match"] == etag

    temporary = await fetcher.get(feed_server.url("/t"), public_only=public_only)
    assert (temporary.status, temporary.moved_to) == (200, None)

    busy = await fetcher.get(feed_server.url("/r"), public_only=public_only)
    assert (busy.status, busy.retry_after, busy.moved_to) == (429, 120.0, None)
    assert busy.error == "HTTP 429 Too Many Requests"


@pytest.mark.parametrize("public_only", [True, False], ids=["untrusted", "trusted"])
async def test_a_redirect_chain_is_capped(
    fetcher: Fetcher, feed_server: FeedServer, public_only: bool
) -> None:
    feed_server.redirect_loop("/loop")
    result = await fetcher.get(feed_server.url("/loop"), public_only=public_only)
    assert result.error == "too many redirects (more than 5)"
    assert len(feed_server.calls_to("/loop")) == 6  # the request and five redirects


async def test_an_allowed_name_is_resolved_by_the_policy_resolver(
    fetcher: Fetcher, feed_server: FeedServer, resolver: MapResolver
) -> None:
    feed_server.add("/c.xml", "<rss/>")
    by_name = f"http://feeds.test:{origin_port(feed_server)}/c.xml"
    feed_server.redirect("/n", by_name, permanent=True)
    result = await fetcher.get(feed_server.url("/n"), public_only=True)
    assert (result.status, result.body, result.moved_to) == (200, b"<rss/>", by_name)
    assert "feeds.test" in resolver.lookups


async def test_the_system_resolver_refuses_localhost(
    fetcher: Fetcher, feed_server: FeedServer, secret: SecretServer
) -> None:
    """Unmapped names go through the system resolver, as in production."""
    feed_server.redirect("/go", f"http://localhost:{secret.port}/secret", permanent=False)
    result = await fetcher.get(feed_server.url("/go"), public_only=True)
    assert result.error is not None
    assert result.error.startswith(f"refused redirect 1 to http://localhost:{secret.port}/secret:")
    assert "localhost resolves to" in result.error
    assert result.error.endswith("which is not a public address (loopback)")
    assert secret.connections == []


async def test_a_trusted_source_may_redirect_to_loopback(
    fetcher: Fetcher, feed_server: FeedServer, secret: SecretServer
) -> None:
    feed_server.redirect("/go", f"http://127.0.0.1:{secret.port}/secret", permanent=False)
    result = await fetcher.get(feed_server.url("/go"), public_only=False)
    assert (result.error, result.status, result.body) == (None, 200, SECRET)
    assert len(secret.connections) == 1


async def test_without_a_policy_untrusted_requests_go_anywhere(
    feed_server: FeedServer, secret: SecretServer
) -> None:
    """AINEWS_ALLOW_PRIVATE_SOURCES=true: the operator's choice, the only way to turn it off."""
    feed_server.redirect("/go", f"http://127.0.0.1:{secret.port}/secret", permanent=False)
    async with open_fetcher(
        user_agent="ainews-test",
        request_timeout=2.0,
        max_bytes=1_000_000,
        limit=10,
        limit_per_host=4,
        public_only=None,
    ) as fetcher:
        result = await fetcher.get(feed_server.url("/go"), public_only=True)
    assert (result.error, result.body) == (None, SECRET)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
async def test_the_connector_alone_refuses_the_dialled_address(
    fetcher: Fetcher, feed_server: FeedServer, secret: SecretServer, host: str
) -> None:
    """Belt and braces: even a request that lets aiohttp follow redirects itself (skipping the
    per-hop check, and the resolver for an IP literal) is stopped by the socket factory."""
    feed_server.redirect("/go", f"http://{host}:{secret.port}/secret", permanent=False)
    assert fetcher.public is not None
    with pytest.raises(aiohttp.ClientConnectorError) as raised:
        async with fetcher.public.session.get(feed_server.url("/go"), allow_redirects=True):
            pass
    assert isinstance(raised.value.os_error, PrivateAddressRefused)
    assert str(raised.value.os_error) == f"{host.strip('[]')} is not a public address (loopback)"
    assert secret.connections == []
    assert len(feed_server.calls_to("/go")) == 1


async def test_the_poll_stores_the_refusal_and_teaser_pages_are_covered(
    tmp_path: Path, feed_server: FeedServer, secret: SecretServer
) -> None:
    """A chat-added feed that redirects to the metadata service fails with the reason stored;
    a chat-added feed whose teaser's page redirects to a loopback service keeps its teaser."""
    kestrel = "https://wire.example.com/2026/11/22/kestrel"
    atom = (TEST_FEEDS / "atom_en.xml").read_bytes()
    feed_server.add("/atom.xml", atom.replace(kestrel.encode(), feed_server.url("/page").encode()))
    feed_server.redirect("/page", f"http://127.0.0.1:{secret.port}/page", permanent=False)
    feed_server.redirect("/meta.xml", "http://169.254.169.254/latest/meta-data/", permanent=True)
    async with (
        open_app(make_settings(tmp_path), fetching=True) as app,
        open_fetcher(
            user_agent="ainews-test",
            request_timeout=2.0,
            max_bytes=1_000_000,
            limit=10,
            limit_per_host=4,
            public_only=policy_for(feed_server),
        ) as fetcher,
    ):
        specs = [
            SourceSpec(url=feed_server.url("/meta.xml"), name="meta", category="research"),
            SourceSpec(url=feed_server.url("/atom.xml"), name="teasers", category="research"),
        ]
        await app.db.run(add_missing_sources, specs=specs, trusted=False)
        assert app.parser is not None

        report = await poll_sources(
            db=app.db, fetcher=fetcher, parser=app.parser, config=app.poll_config
        )

        with Session(app.db.engine) as session:
            state = {s.name: s for s in session.exec(select(Source))}
            bodies = [a.body_text for a in session.exec(select(Article))]
    refusal = (
        "refused redirect 1 to http://169.254.169.254/latest/meta-data/: "
        "169.254.169.254 is not a public address (link-local)"
    )
    assert [(e["source"], e["error"]) for e in report.errors] == [("meta", refusal)]
    assert (state["meta"].last_error, state["meta"].error_count) == (refusal, 1)
    assert state["meta"].url == feed_server.url("/meta.xml")  # a refused hop moves nothing
    assert state["teasers"].last_error is None and len(bodies) == 3
    assert len(feed_server.calls_to("/page")) == 1  # the teaser's page was tried, and refused
    assert not any("TOP SECRET" in body for body in bodies)
    assert secret.connections == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
        ("::10.0.0.1", "private"),  # IPv4-compatible
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("198.18.0.1", "private"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_which_addresses_are_public(address: str, kind: str | None) -> None:
    refusal = PublicOnly().refusal(address, 80)
    assert refusal == (None if kind is None else f"{address} is not a public address ({kind})")


def test_also_public_is_one_exact_address_and_port() -> None:
    policy = PublicOnly(also_public=[("127.0.0.1", 8080)])
    assert policy.refusal("127.0.0.1", 8080) is None
    assert policy.refusal("127.0.0.1", 8081) == "127.0.0.1 is not a public address (loopback)"
    assert policy.refusal("127.0.0.2", 8080) == "127.0.0.2 is not a public address (loopback)"
    assert policy.refusal("::1", 8080) == "::1 is not a public address (loopback)"
    assert PublicOnly().refusal("127.0.0.1", 8080) is not None


def test_adding_from_chat_checks_the_same_policy() -> None:
    assert literal_address_reason("http://169.254.169.254/") == (
        "169.254.169.254 is not a public address (link-local)"
    )
    assert literal_address_reason("http://0x7f.1/feed") == (
        "127.0.0.1 is not a public address (loopback)"
    )
    assert literal_address_reason("https://user:pw@feeds.example.com/") == CREDENTIALS
    assert literal_address_reason("https://feeds.example.com/rss") is None
