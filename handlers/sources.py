"""`sources list | add | remove` from chat, and the one check every way of adding a source uses.

Sources added from chat are untrusted: they must be http(s), carry no credentials and name no
private address literal, and they are fetched through the public-only connector
(jobs.public_only). The CLI and sources.toml are the operator's: the same URL shape is required
(`source_url_problem(url, trusted=True)`), but loopback and private hosts are allowed.

The list is read by everyone in a workspace, so what it shows depends on who asks. Everyone sees
each source's health — 正常 / 再試行待ち / 停止中 / 未取得, the last error in a few words of our
own (`error_brief`: "HTTP 404", "接続できません"), the last success, the articles of the last 7
days, the share of polls answered 304 (nothing new), the next poll — and a link without user
name or password. The stored error (an exception text that may name internal hosts, "Cannot
connect to host 10.1.2.3:80"), the full feed URL, and the address of a source on an internal
host (no link, and no name that spells its host) are shown to admins only. The same public
view names a source in the channel notices (`source_notice_reply`), which everyone reads.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, tzinfo
from urllib.parse import urlsplit, urlunsplit

from handlers.context import HandlerContext
from handlers.reply import Code, Href, Inline, Line, Paging, Reply, line
from jobs.public_only import literal_address_reason, url_problem
from jobs.urls import host_of
from storage.clock import ensure_utc
from storage.models import Source, SourceNotice
from storage.sources import (
    DISABLED,
    SourceHealth,
    SourceSpec,
    add_missing_sources,
    enable_source,
    remove_source_by,
    sources_health,
)

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


# What everyone may read about a failure: our words for the kind of error, never its text.
_ERROR_KINDS = (
    ("timed out", "タイムアウト"),
    ("larger than", "サイズ超過"),
    ("too many redirects", "リダイレクトが多すぎます"),
    ("cannot fetch", "取得できないURL"),
    ("invalid url", "取得できないURL"),
    ("connect", "接続できません"),
    ("ssl", "接続できません"),
    ("certificate", "接続できません"),
    ("refused", "取得を拒否"),
    ("not a feed", "フィードではありません"),
    ("unparseable", "フィードを解析できません"),
    ("malformed", "フィードを解析できません"),
    ("empty response", "空の応答"),
    ("internal error", "内部エラー"),
)


def error_brief(status: int | None, error: str | None) -> str:
    """The last error in a few words safe for everyone: an HTTP status as it is, otherwise the
    kind of failure, never the stored text (which may name hosts and addresses)."""
    if error is None:
        return ""
    if status is not None and status >= 400:
        return f"HTTP {status}"
    lowered = error.lower()
    return next((brief for key, brief in _ERROR_KINDS if key in lowered), "取得エラー")


def status_text(health: SourceHealth) -> str:
    """The status everyone sees (in Japanese)."""
    source = health.source
    brief = error_brief(source.last_status, source.last_error)
    detail = f": {brief}" if brief else ""
    if health.status == "disabled":
        why = f"連続{source.error_count}回失敗" if source.error_count else "管理者が停止"
        if source.disabled_reason == "duration" and source.failing_since and source.disabled_at:
            days = (ensure_utc(source.disabled_at) - ensure_utc(source.failing_since)).days
            why = f"{max(days, 1)}日以上失敗"
        return f"停止中（{why}{detail}）"
    if health.status == "backing_off":
        return f"再試行待ち（連続{source.error_count}回失敗{detail}）"
    return "未取得" if health.status == "never_polled" else "正常"


def _when(value: datetime | None, tz: tzinfo) -> str:
    return ensure_utc(value).astimezone(tz).strftime("%m/%d %H:%M") if value else "なし"


def health_text(health: SourceHealth, tz: tzinfo) -> str:
    """Status, last success, items of the last 7 days, share of 304s, next poll."""
    source = health.source
    share = health.not_modified_share
    parts = [
        status_text(health),
        f"最終成功 {_when(source.last_success_at, tz)}",
        f"7日間 {health.items_7d}件",
        f"304 {'—' if share is None else f'{share:.0%}'}",
    ]
    if health.status != "disabled":
        upcoming = _when(source.next_poll_at, tz) if source.next_poll_at else "次の巡回"
        parts.append(f"次回 {upcoming}")
    return " · ".join(parts)


async def list_sources_reply(ctx: HandlerContext, *, page: int = 1) -> Reply:
    """`sources list [page:N]`: `PAGE_SIZE` sources per page, 前へ / 次へ through `Paging`
    (the publishing core re-runs the command with `page:N`), never one clipped message."""
    sources = await ctx.db.run(sources_health, now=ctx.now)
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
    lines = [_source_line(ctx, health) for health in shown]
    notices: tuple[str, ...] = ()
    if not ctx.is_admin and any(health.source.last_error for health in shown):
        notices = (ADMIN_DETAILS_NOTE,)
    return Reply(
        title=title,
        lines=tuple(lines),
        paging=Paging(page=page, pages=pages, total=len(sources)) if pages > 1 else None,
        notices=notices,
    )


def _source_line(ctx: HandlerContext, health: SourceHealth) -> Line:
    source = health.source
    label = ctx.taxonomy.label_of(source.category)
    parts: list[Inline] = []
    if ctx.is_admin:
        # The id is what `sources remove` accepts, shorter than a URL to type.
        parts += ["ID ", Code(str(source.id)), " ", Href(source.name, source.url)]
    else:
        parts.append(public_label(source))
    parts.append(f"（{label}） — {health_text(health, ctx.tz)}")
    if ctx.is_admin and source.last_error:
        error = " ".join(source.last_error.split())
        if len(error) > MAX_ERROR_SHOWN:
            error = error[: MAX_ERROR_SHOWN - 1] + "…"
        parts.append(f": {error}")
    return line(*parts, bullet=True)


def public_label(source: Source) -> Inline:
    """The source as everyone may see it: a link without credentials; a source on an internal
    host is named, but neither linked nor named after its host (the CLI's default name is the
    URL)."""
    if is_internal_host(source.url):
        host = _host(source.url)
        named_after_host = bool(host) and host in source.name.lower()
        return "（内部のソース）" if named_after_host else _public_name(source)
    return Href(_public_name(source), without_userinfo(source.url))


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


async def enable_source_from_chat(ctx: HandlerContext, url_or_id: str) -> Reply:
    source = await ctx.db.run(enable_source, url_or_id=url_or_id)
    if source is None:
        return Reply(title=f"{url_or_id} というソースはありません", error=True)
    return Reply(
        title="ソースの巡回を再開しました",
        lines=(line(Href(source.name, source.url), " は次の巡回から取得します。"),),
    )


def source_notice_reply(notice: SourceNotice, source: Source, *, tz: tzinfo) -> Reply:
    """A notice for the briefing channel, which everyone reads: the public name, the reason in
    our words, and (for a disabled source) the command to enable it again, by id."""
    name = public_label(source)
    if notice.kind != DISABLED:
        return Reply(
            title="ソースが復旧しました",
            lines=(
                line(
                    name,
                    f" は連続{notice.failures}回の失敗の後、{_when(notice.created_at, tz)} に"
                    "取得できました。巡回を続けます。",
                ),
            ),
        )
    if notice.reason == "duration":
        days = (ensure_utc(notice.created_at) - ensure_utc(notice.streak_started_at)).days
        why = f"{_when(notice.streak_started_at, tz)} から{max(days, 1)}日以上取得に失敗し続けた"
    else:
        why = f"連続{notice.failures}回取得に失敗した"
    brief = error_brief(source.last_status, source.last_error)
    return Reply(
        title="ソースの巡回を停止しました",
        lines=(
            line(name, f" は{why}ため、巡回を停止しました。"),
            *((line(f"最後のエラー: {brief}"),) if brief else ()),
            line(
                "再開するには管理者が ",
                Code(f"/ainews sources enable {source.id}"),
                "（CLI では ",
                Code(f"ainews sources enable {source.id}"),
                "）を実行してください。",
            ),
        ),
    )
