"""`sources list | add | remove` from chat, and the one check every way of adding a source uses.

Sources added from chat are untrusted: they must be http(s), carry no credentials and name no
private address literal, and they are fetched through the public-only connector
(jobs.public_only). The CLI and sources.toml are the operator's: the same URL shape is required
(`source_url_problem(url, trusted=True)`), but loopback and private hosts are allowed.

The list is read by everyone in a workspace, so what it shows depends on who asks. Everyone sees
a plain status per source (OK / 未取得 / エラー（N回）) and a link without user name or password.
The stored error (an exception text that may name internal hosts, "Cannot connect to host
10.1.2.3:80"), the full feed URL, and the address of a source on an internal host (no link, and
no name that spells its host) are shown to admins only.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

from handlers.context import HandlerContext
from handlers.reply import Code, Href, Inline, Line, Paging, Reply, line
from jobs.public_only import literal_address_reason, url_problem
from jobs.urls import host_of
from storage.models import Source
from storage.sources import SourceSpec, add_missing_sources, list_sources, remove_source_by

PAGE_SIZE = 20
MAX_ERROR_SHOWN = 300  # characters of a stored error in an admin's list
ADMIN_DETAILS_NOTE = "エラーの詳しい内容は管理者にだけ表示されます。"
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
# Names that only mean something inside a network (RFC 6761/6762/8375 and common private TLDs).
_INTERNAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".intranet",
    ".lan",
    ".home",
    ".corp",
    ".private",
    ".home.arpa",
)
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")


def source_url_problem(url: str, *, trusted: bool) -> str | None:
    """Why `url` cannot be a source, in one line, or None. Chat and the CLI both ask this: a
    URL that can never be fetched (no scheme, `ftp://`, no host, a space) is refused when it is
    added, rather than stored to fail on every poll. `trusted` (the operator) allows private
    and loopback hosts and credentials; chat-added sources get the public-only checks."""
    if _BLANK_OR_CONTROL.search(url):
        return "the URL contains a space or a control character"
    problem = url_problem(url)
    if problem is None and not trusted:
        problem = literal_address_reason(url)
    return problem


def without_userinfo(url: str) -> str:
    """`url` with any `user:password@` removed (the rest untouched); unparsable input as is."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO_IN_TEXT.sub(r"\1", url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def is_internal_host(url: str) -> bool:
    """Whether the URL's host only makes sense inside a network: a private, loopback or
    link-local address, `localhost`, a single-label name or a private-use suffix. A best effort
    on the name alone (no DNS): it keeps the obvious intranet addresses out of a list everyone
    reads; a public-looking name that resolves privately is not detected."""
    host = _host(url)
    if not host:
        return True  # unparsable or no host: cannot tell, so treat as internal
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(_INTERNAL_SUFFIXES)
    return not address.is_global


def status_text(source: Source) -> str:
    """The plain status everyone sees."""
    if source.last_error:
        return f"エラー（{max(source.error_count, 1)}回）"
    return "未取得" if source.last_polled_at is None else "OK"


async def list_sources_reply(ctx: HandlerContext, *, page: int = 1) -> Reply:
    """`sources list [page:N]`: `PAGE_SIZE` sources per page, 前へ / 次へ through `Paging`
    (the publishing core re-runs the command with `page:N`), never one clipped message."""
    sources = await ctx.db.run(list_sources)
    title = f"巡回中のソース（{len(sources)}件）"
    if not sources:
        return Reply(title=title, text="なし")
    pages = -(-len(sources) // PAGE_SIZE)
    if page > pages:
        return Reply(
            title=f"ソースの一覧は {pages} ページまでです",
            lines=(line(Code(f"/ainews sources list page:{pages}"), " までを指定してください。"),),
            error=True,
        )
    shown = sources[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    lines = [_source_line(ctx, source) for source in shown]
    notices: tuple[str, ...] = ()
    if not ctx.is_admin and any(source.last_error for source in shown):
        notices = (ADMIN_DETAILS_NOTE,)
    return Reply(
        title=title,
        lines=tuple(lines),
        paging=Paging(page=page, pages=pages, total=len(sources)) if pages > 1 else None,
        notices=notices,
    )


def _source_line(ctx: HandlerContext, source: Source) -> Line:
    label = ctx.taxonomy.label_of(source.category)
    parts: list[Inline] = []
    if ctx.is_admin:
        # The id is what `sources remove` accepts, shorter than a URL to type.
        parts += ["ID ", Code(str(source.id)), " ", Href(source.name, source.url)]
    elif is_internal_host(source.url):
        # Named, but neither linked nor named after its host (the CLI's default name is the URL).
        host = _host(source.url)
        named_after_host = bool(host) and host in source.name.lower()
        parts.append("（内部のソース）" if named_after_host else _public_name(source))
    else:
        parts.append(Href(_public_name(source), without_userinfo(source.url)))
    parts.append(f"（{label}） — {status_text(source)}")
    if ctx.is_admin and source.last_error:
        error = " ".join(source.last_error.split())
        if len(error) > MAX_ERROR_SHOWN:
            error = error[: MAX_ERROR_SHOWN - 1] + "…"
        parts.append(f": {error}")
    return line(*parts, bullet=True)


def _public_name(source: Source) -> str:
    """The name without credentials: the CLI names a source after its URL by default."""
    return _USERINFO_IN_TEXT.sub(r"\1", source.name)


async def add_source_from_chat(ctx: HandlerContext, url: str, category: str | None) -> Reply:
    problem = source_url_problem(url, trusted=ctx.allow_private_sources)
    if problem:
        return Reply(title=f"追加できません: {problem}", error=True)
    slug = ctx.taxonomy.slugs[0]
    if category:
        resolved = ctx.taxonomy.resolve(category)
        if resolved is None:
            return Reply(title=f"カテゴリー「{category}」はありません", error=True)
        slug = resolved.slug
    spec = SourceSpec(url=url, name=host_of(url), category=slug)
    added = await ctx.db.run(add_missing_sources, specs=[spec], trusted=False)
    if not added:
        return Reply(title=f"{url} はすでに登録されています")
    return Reply(title=f"ソースを追加しました: {url}（{slug}）", text="次の巡回から取得します。")


async def remove_source_from_chat(ctx: HandlerContext, url: str) -> Reply:
    removed = await ctx.db.run(remove_source_by, url_or_id=url)
    if not removed:
        return Reply(title=f"{url} というソースはありません", error=True)
    return Reply(title=f"ソースを削除しました: {url}")
