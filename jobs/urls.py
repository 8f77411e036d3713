"""URL normalisation. Two uses, kept apart on purpose:

- the link stored and shown for an entry (`normalise_url(link, keep_fragment=True)`): tDiary,
  Hatena and scripting.com give every post of a day the same page URL with its own `#fragment`,
  so within a feed the fragment is what tells two posts apart;
- the canonical URL (`normalise_url(link)`, fragment dropped) that finds the same article in
  *another* feed, whatever tracking decoration each feed adds.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that identify a campaign or a click, never the document.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid", "mc_eid",
        "igshid", "ref_src", "ref_url", "_hsenc", "_hsmi", "mkt_tok", "spm", "cmpid", "ito",
        "sr_share", "rss", "feed", "ncid", "cid", "ocid",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "__twitter", "_ga", "at_")
WEB_SCHEMES = frozenset({"http", "https"})


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def normalise_url(url: str, *, keep_fragment: bool = False) -> str:
    """Scheme and host lower-cased, default port and tracking parameters dropped, remaining
    parameters sorted, `/` kept as the empty path; the fragment dropped unless `keep_fragment`.
    The path's case is kept: servers may treat it as significant. With the fragment kept, a
    link without one normalises exactly as before, so rows stored before fragments were kept
    still match their entries."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower() or "https"
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    path = parts.path or "/"
    query = urlencode(
        sorted(
            (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
        )
    )
    return urlunsplit((scheme, host, path, query, parts.fragment if keep_fragment else ""))


def is_web_url(url: str) -> bool:
    """An absolute http(s) URL with a host: something a reader can open and we can fetch."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.hostname)


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
