"""Keeping chat-added sources away from private networks (SSRF).

Sources added by the operator (CLI, sources.toml) are trusted and may be anywhere, 127.0.0.1
included. Sources added from chat are not: their requests go through a separate aiohttp
session whose resolver refuses any name that resolves to a loopback, private, link-local or
otherwise non-global address. Checking at connect time (not only when the source is added)
also covers redirects and DNS answers that change later.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver


class PrivateAddressRefused(OSError):
    pass


def non_public_reason(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_global and not ip.is_multicast:
        return None
    return f"{address} is not a public address"


class PublicOnlyResolver(ThreadedResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await super().resolve(host, port, family)
        for result in results:
            reason = non_public_reason(result["host"])
            if reason:
                raise PrivateAddressRefused(f"refused {host}: {reason}")
        return results


def literal_address_reason(url: str) -> str | None:
    """aiohttp skips the resolver for IP literals, so those are checked here."""
    host = urlsplit(url).hostname or ""
    try:
        return non_public_reason(host)
    except ValueError:
        return None  # a name: the resolver checks it


def url_problem(url: str) -> str | None:
    """Why a URL cannot be a feed address at all (scheme, missing host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// URLs can be sources"
    if not parts.hostname:
        return "the URL has no host"
    return None
