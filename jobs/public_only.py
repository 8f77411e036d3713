"""Keeping chat-added sources away from private networks (SSRF), on every hop.

Sources added by the operator (CLI, sources.toml) are trusted and may be anywhere, 127.0.0.1
included. Sources added from chat are not: a feed, a redirect it answers with, or a teaser's
article page could point at the cloud metadata service (169.254.169.254), the host itself or the
office network, and the poller would store the answer where search shows it back.

One policy, `PublicOnly`, decides which peer addresses may be dialled (`refusal`), and it is
enforced at three points, each before any packet leaves:

- `url_refusal`, by the fetcher, on every hop's URL before its request (jobs.fetch follows
  redirects itself for this): http(s) only, no user name or password, and IP literals — which
  aiohttp never hands to a resolver — checked directly;
- the connector's resolver: a name is refused when *any* address it resolves to is refused, so a
  mixed answer cannot fall back to the private one;
- the connector's socket factory: the dialled address itself (what miniflux checks), which holds
  even for a request that did not go through the other two (aiohttp following redirects itself).

The resolver and the socket factory see the address aiohttp then connects to, so an answer
that changes between a check and the connect (DNS rebinding) cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IPAddress = IPv4Address | IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class PrivateAddressRefused(OSError):
    """Raised by the connector's resolver or socket factory; its text is the reason."""


def url_problem(url: str | URL) -> str | None:
    """Why a URL cannot be fetched at all (scheme, missing host), parsed as aiohttp parses it."""
    try:
        parts = url if isinstance(url, URL) else URL(url)
    except (TypeError, ValueError):
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// URLs can be sources"
    if not parts.host:
        return "the URL has no host"
    return None


def literal_address_reason(url: str) -> str | None:
    """Why a chat-added URL would be refused before any name is looked up (the check done when
    it is added; the fetcher repeats it on every hop)."""
    return PublicOnly().url_refusal(url)


class PublicOnly:
    """The address policy for untrusted requests, and the aiohttp connector that enforces it.

    `also_public` lists exact (address, port) pairs to treat as public. Tests need it: their
    stand-in publishers can only live on loopback, and the point is to show that every *other*
    loopback port is still refused. Production builds `PublicOnly()` and no setting reaches this
    argument. `resolver` replaces the system resolver (tests map names without DNS); one passed
    in is the caller's to close.
    """

    def __init__(
        self,
        *,
        resolver: AbstractResolver | None = None,
        also_public: Iterable[tuple[str, int]] = (),
    ) -> None:
        self._resolver = resolver
        self._also_public = frozenset((_ip(host), port) for host, port in also_public)

    def refusal(self, address: str | IPAddress, port: int) -> str | None:
        """Why `address:port` must not be dialled, or None when it is a public address."""
        kind = self._kind(address, port)
        return None if kind is None else f"{address} is not a public address ({kind})"

    def _kind(self, address: str | IPAddress, port: int) -> str | None:
        ip = address if isinstance(address, IPv4Address | IPv6Address) else _ip(address)
        if (ip, port) in self._also_public:
            return None
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            return _non_public_kind(ip.ipv4_mapped)  # dialled as that IPv4 address, nothing else
        for candidate in (_embedded_ipv4(ip), ip):  # the carried IPv4 names it best
            if candidate is not None:
                kind = _non_public_kind(candidate)
                if kind is not None:
                    return kind
        return None

    def url_refusal(self, url: str | URL) -> str | None:
        """Why this hop must not be requested, decided from the URL alone: its scheme, any
        user name or password (a credential smuggled into an untrusted URL is either a parser
        trick or a leak to wherever it points) and an address written as a literal."""
        try:
            parts = url if isinstance(url, URL) else URL(url)
        except (TypeError, ValueError):
            return "not a valid URL"
        problem = url_problem(parts)
        if problem is not None:
            return problem
        if parts.user is not None or parts.password is not None:
            return "a URL with a user name or password is not fetched for a chat-added source"
        assert parts.host is not None and parts.port is not None  # http(s) with a host
        literal = _literal_address(parts.host)
        if literal is None:
            return None  # a name: the connector's resolver checks what it resolves to
        return self.refusal(literal, parts.port)

    def connector(
        self, *, limit: int, limit_per_host: int, ttl_dns_cache: int | None = 300
    ) -> aiohttp.TCPConnector:
        """A connector that refuses non-public peers at resolution and again at dial time.
        Build it inside the running event loop (aiohttp's resolver binds to it)."""
        return aiohttp.TCPConnector(
            limit=limit,
            limit_per_host=limit_per_host,
            ttl_dns_cache=ttl_dns_cache,
            resolver=_CheckingResolver(self, self._resolver),
            socket_factory=self._open_socket,
        )

    def _open_socket(self, addr_info: AddrInfoType) -> socket.socket:
        """aiohttp's socket factory: called with the address about to be dialled, before the
        socket exists, so a refused address gets no packet."""
        family, type_, proto, _, sockaddr = addr_info
        host, port = str(sockaddr[0]), int(sockaddr[1])
        reason = self.refusal(host, port)
        if reason is not None:
            raise PrivateAddressRefused(reason)
        return socket.socket(family=family, type=type_, proto=proto)


class _CheckingResolver(AbstractResolver):
    """Resolves with `inner` (the system's when None), then refuses the whole name if any
    answer is refused."""

    def __init__(self, policy: PublicOnly, inner: AbstractResolver | None) -> None:
        self._policy = policy
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            kind = self._policy._kind(result["host"], port)
            if kind is not None:
                raise PrivateAddressRefused(
                    f"{host} resolves to {result['host']}, which is not a public address ({kind})"
                )
        return results

    async def close(self) -> None:
        """Nothing to release: the system resolver holds nothing, and an injected one is its
        maker's to close (aiohttp never closes a resolver it was given)."""


def _ip(address: str) -> IPAddress:
    return ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)


def _literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS. Beyond the standard forms, getaddrinfo also
    accepts the legacy IPv4 ones (`2130706433`, `0x7f.1`, `127.1`) and would dial them as
    127.0.0.1; inet_aton parses exactly those, locally."""
    try:
        return _ip(host)
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _embedded_ipv4(ip: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries through a relay (6to4, NAT64, IPv4-compatible):
    the packet may be delivered there, so it is checked as well as the IPv6 address."""
    if isinstance(ip, IPv4Address):
        return None
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or (int(ip) >> 32 == 0 and int(ip) > 0xFFFF):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _non_public_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is, or None when it is globally routable."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "not globally routable"
    return None
