"""The real poller against real publishers' feeds, and hand-made feeds for what the corpus lacks.

`../shared/realfeeds/` holds 77 feeds exactly as publishers served them (see its README.md):
Japanese blogs in EUC-JP, Shift_JIS and CP932, Atom 0.3, RSS 0.9x and RDF, podcasts of 1.6 and
2.7 MB, fragment-identified entries and ill-formed files. They are served here, byte for byte, on
127.0.0.1 and polled by the real poller (aiohttp, the parse pool, storage), and each feed's stored
rows are compared with a count made here without any of the poller's code: lxml over the raw
XML where it is well-formed, feedparser with its default settings where it is not. A hand-made
feed covers each case the corpus has no real file for (an RSS 2.0 feed in Shift_JIS with CP932
characters, the WHATWG encoding labels, an entry with an id and no link, …).

The corpus is read from its place, never copied into the project. Without it the corpus test is
skipped and says why, except under CI, where a missing corpus is a failure.
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import feedparser
import pytest
from lxml import etree
from sqlmodel import Session, col, select

from bot.app import App, open_app, poll_once
from bot.config import Settings
from storage.models import Article, Source
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import REALFEEDS, make_settings, realfeeds_dir
from tests.fakes.feed_server import FeedServer, Response

# What real servers send for each kind of feed, without a charset parameter: the corpus is
# about what the documents themselves declare (RFC 7303: then the BOM or the XML declaration
# decides). The hand-made cases below cover charset parameters and text/xml.
_CONTENT_TYPES: Final = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "rdf": "application/rdf+xml",
}

_ATOM_NAMESPACES: Final = frozenset({"http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#"})
_RSS1_NAMESPACES: Final = frozenset(
    {"http://purl.org/rss/1.0/", "http://my.netscape.com/rdf/simple/0.9/"}
)
# RSS 0.9x/2.0 elements carry no namespace, except in feeds written with UserLand's default one.
_RSS2_NAMESPACES: Final = frozenset({None, "http://backend.userland.com/rss2"})
_RDF_ABOUT: Final = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"

# Hiragana, katakana (incl. the phonetic extensions and half-width forms) and CJK ideographs.
_JAPANESE: Final = re.compile(
    r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]"
)
# What Japanese text looks like after it was decoded with a single-byte codec: `‚` and `ƒ` are
# Shift_JIS lead bytes in windows-1252, `¤` and `¡` EUC-JP ones in Latin-1, `Ã` is UTF-8 read as
# Latin-1, U+FFFD a byte a decoder gave up on.
_MOJIBAKE: Final = re.compile("[‚ƒ¤¡Ã\ufffd]")
_MOJIBAKE_ALLOWED: Final = 3
"""Markers tolerated per feed beyond those in the feed's own titles: a few bytes that are
invalid in the declared encoding are replaced, the rest of the feed must stay Japanese."""
_JAPANESE_SHARE_KEPT: Final = 0.8
"""Stored titles must be Japanese at least this fraction as often as the feed's own titles."""

# WHATWG Encoding Standard labels mapped to the Python codec that decodes them as browsers do
# (the subset this corpus declares). EUC-JP includes NEC row 13 (①, ⊿, …): euc_jis_2004 has it,
# Python's euc_jp does not.
_WHATWG_CODECS: Final = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "csshiftjis": "cp932",
    "euc-jp": "euc_jis_2004",
    "x-euc-jp": "euc_jis_2004",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "iso-8859-1": "cp1252",
    "us-ascii": "cp1252",
    "gb2312": "gb18030",
}
_XML_DECLARATION: Final = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)")
_XML_DECLARATION_TEXT: Final = re.compile(r"^\s*<\?xml[^>]*\?>")


@dataclass(frozen=True, slots=True)
class CorpusFeed:
    """One file of the corpus with what its manifest says about it."""

    file: str
    language: str
    format_detail: str
    feedparser_entries: int
    served: bytes
    """The body as the publisher sent it (gzip-compressed for the one gzip file)."""
    gzipped: bool

    @property
    def document(self) -> bytes:
        return gzip.decompress(self.served) if self.gzipped else self.served

    @property
    def path(self) -> str:
        """One directory per feed, so relative links of two feeds never resolve alike."""
        return f"/{self.file.split('.', 1)[0]}/{self.file}"

    @property
    def content_type(self) -> str:
        detail = self.format_detail
        if detail.startswith("atom"):
            return _CONTENT_TYPES["atom"]
        if detail.startswith(("rss1.0", "rss0.90")):
            return _CONTENT_TYPES["rdf"]
        return _CONTENT_TYPES["rss"]


@dataclass(frozen=True, slots=True)
class RawEntry:
    """An entry as the document has it: its id (RSS guid, Atom id, RSS 1.0 rdf:about), its
    link, its title. Either may be None."""

    id: str | None
    link: str | None
    title: str | None = None

    @property
    def identity(self) -> tuple[str, str] | None:
        """Within one feed, an entry is its id; without one, its link as written (fragment
        kept: tDiary and Hatena tell posts on one page apart by the fragment alone)."""
        if self.id:
            return ("id", self.id)
        if self.link:
            return ("link", self.link)
        return None


def load_corpus() -> list[CorpusFeed]:
    """The corpus in manifest order, or a skip (a failure under CI) when it is absent."""
    manifest = realfeeds_dir() / "manifest.json"
    records: list[dict[str, Any]] = json.loads(manifest.read_text(encoding="utf-8"))
    return [
        CorpusFeed(
            file=r["file"],
            language=r["language"],
            format_detail=r["format_detail"],
            feedparser_entries=r["feedparser_entries"],
            served=(REALFEEDS / r["file"]).read_bytes(),
            gzipped=r["file"].endswith(".gz"),
        )
        for r in records
    ]


# -- the independent count --------------------------------------------------------------------


def read_entries(document: bytes) -> tuple[str, list[RawEntry]]:
    """Entries of a feed by the method that can read it: strict lxml (no recovery, no entities
    loaded, no network) where the XML is well-formed, else feedparser with its defaults, as a
    lenient reader would. Returns the method's name too."""
    try:
        root = etree.fromstring(document, parser=_strict_parser())
    except etree.XMLSyntaxError:
        parsed = feedparser.parse(document)
        entries = [
            RawEntry(e.get("id") or None, e.get("link") or None, e.get("title"))
            for e in parsed.entries
        ]
        return "feedparser", entries
    return "lxml", list(_entries_of(root))


def _strict_parser() -> Any:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def _entries_of(root: Any) -> Iterable[RawEntry]:
    """Items and entries where the formats put them: children of the root (RSS 1.0/0.90, Atom)
    or of <channel> (RSS 0.9x/2.0). An <item/> nested inside an item is not an entry."""
    containers = [root, *(c for c in root if _local(c) == "channel")]
    for container in containers:
        for element in container:
            name, namespace = _local(element), _namespace(element)
            if name == "entry" and namespace in _ATOM_NAMESPACES:
                yield _atom_entry(element, namespace)
            elif name == "item" and namespace in _RSS1_NAMESPACES | _RSS2_NAMESPACES:
                yield _rss_item(element, namespace)


def _atom_entry(element: Any, namespace: str | None) -> RawEntry:
    ident = link = title = None
    for child in element:
        if _namespace(child) != namespace:
            continue
        name = _local(child)
        if name == "id":
            ident = _text(child)
        elif name == "title":
            title = "".join(child.itertext())
        elif name == "link" and link is None and child.get("rel", "alternate") == "alternate":
            link = child.get("href") or None
    return RawEntry(ident, link, title)


def _rss_item(element: Any, namespace: str | None) -> RawEntry:
    ident = element.get(_RDF_ABOUT) or None  # RSS 1.0's identifier of the item
    link = title = None
    for child in element:
        name, child_namespace = _local(child), _namespace(child)
        if name == "guid" and child_namespace in _RSS2_NAMESPACES:
            ident = _text(child) or ident
        elif child_namespace != namespace:
            continue
        elif name == "link":
            link = _text(child) or link
        elif name == "title":
            title = "".join(child.itertext())
    return RawEntry(ident, link, title)


def _local(element: Any) -> str | None:
    return etree.QName(element).localname if isinstance(element.tag, str) else None


def _namespace(element: Any) -> str | None:
    return etree.QName(element).namespace if isinstance(element.tag, str) else None


def _text(element: Any) -> str | None:
    return (element.text or "").strip() or None


def cross_feed_key(link: str, feed_url: str) -> str:
    """What finds one article in two feeds: the absolute link, fragment dropped, scheme and
    host lower-cased."""
    parts = urlsplit(urljoin(feed_url, link.strip()))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


@dataclass(frozen=True, slots=True)
class Expectation:
    feed: CorpusFeed
    method: str
    entries: list[RawEntry]
    count: int
    seen_earlier: int
    """Entries not counted because an earlier feed has their article."""
    wave: int
    """Which poll adds the feed: a feed sharing articles with an earlier one is polled after it,
    so "earlier" means what it says even though one poll fetches concurrently."""


def expected_counts(feeds: Sequence[CorpusFeed], feed_url: dict[str, str]) -> list[Expectation]:
    """Per feed, the number of entries it should store: its distinct identities (id, else
    link), less the entries whose link an earlier feed already had. A link counts across feeds
    only when it is unique in both feeds: two entries of one feed sharing a page are two
    posts, and neither is "the" article of that page."""
    first_feed: dict[str, int] = {}
    waves: list[int] = []
    result: list[Expectation] = []
    for index, feed in enumerate(feeds):
        method, entries = read_entries(feed.document)
        url = feed_url[feed.file]
        keys = [cross_feed_key(e.link, url) if e.link else None for e in entries]
        unique = {k for k, n in Counter(k for k in keys if k).items() if n == 1}
        earlier = {first_feed[k] for k in unique if k in first_feed}
        wave = 1 + max((waves[i] for i in earlier), default=0)
        waves.append(wave)
        identities: set[tuple[str, str]] = set()
        seen_earlier = 0
        for entry, key in zip(entries, keys, strict=True):
            identity = entry.identity
            if identity is None:
                continue
            if key in unique and key in first_feed:
                seen_earlier += 1
                continue
            identities.add(identity)
        for key in unique:
            first_feed.setdefault(key, index)
        result.append(Expectation(feed, method, entries, len(identities), seen_earlier, wave))
    return result


# -- the independent decoding of Japanese titles ---------------------------------------------


def whatwg_codec(label: str) -> str:
    """The Python codec that decodes `label` as the WHATWG Encoding Standard says (for the
    labels this file meets), else the label's own codec."""
    key = label.strip().lower()
    return _WHATWG_CODECS[key] if key in _WHATWG_CODECS else codecs.lookup(key).name


def decoded_titles(document: bytes) -> list[str]:
    """Titles of a feed decoded as a browser would: BOM, else the XML declaration's label read
    through the WHATWG table, bad bytes replaced; then lxml with recovery, so that the files
    libxml2 calls ill-formed only for their encoding are read too."""
    if document.startswith(codecs.BOM_UTF8):
        text = document[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    else:
        declared = _XML_DECLARATION.match(document)
        codec = whatwg_codec(declared.group(1).decode("ascii")) if declared else "utf-8"
        text = document.decode(codec, "replace")
    text = _XML_DECLARATION_TEXT.sub("", text, count=1)
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=True)
    root = etree.fromstring(text, parser=parser)
    return [e.title or "" for e in _entries_of(root)] if root is not None else []


def japanese_share(titles: Sequence[str]) -> float:
    return sum(1 for t in titles if _JAPANESE.search(t)) / len(titles) if titles else 0.0


def mojibake_markers(titles: Iterable[str]) -> int:
    return sum(len(_MOJIBAKE.findall(t)) for t in titles)


# -- driving the poller -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stored:
    titles: list[str]
    error: str | None


async def poll_in_waves(app: App, waves: Sequence[Sequence[SourceSpec]]) -> dict[str, Stored]:
    """Add each wave of sources (trusted, as the operator's own) and poll what is due; returns
    per source name its stored titles and its last error."""
    for specs in waves:
        await app.db.run(add_missing_sources, specs=list(specs))
        await poll_once(app)
    with Session(app.db.engine) as session:
        sources = session.exec(select(Source.id, Source.name, Source.last_error)).all()
        titles: dict[int | None, list[str]] = {id_: [] for id_, _, _ in sources}
        rows = session.exec(select(Article.source_id, Article.title).order_by(col(Article.id)))
        for source_id, title in rows:
            titles[source_id].append(title)
    return {name: Stored(titles[id_], error) for id_, name, error in sources}


def poll_settings(tmp_path: Path) -> Settings:
    """A small fetch timeout (everything is local), room for one host serving every feed, and
    no article pages (AINEWS_FULLTEXT_PER_POLL=0): the corpus links point at the publishers'
    real hosts, which the network guard refuses to resolve."""
    return make_settings(
        tmp_path,
        AINEWS_FETCH_TIMEOUT=5.0,
        AINEWS_POLL_PER_HOST=16,
        AINEWS_PARSE_WORKERS=2,
        AINEWS_FULLTEXT_PER_POLL=0,
    )


def serve(server: FeedServer, path: str, body: bytes, content_type: str, *, gzipped: bool) -> None:
    if gzipped:
        # A compressed body is sent as is, with the header that tells the client to inflate it.
        headers = {"Content-Encoding": "gzip"}
        server.sequence(path, [Response(200, body, headers=headers, content_type=content_type)])
    else:
        server.add(path, body, content_type=content_type)


# -- the corpus -------------------------------------------------------------------------------


@pytest.mark.timeout(180)
async def test_every_real_feed_is_stored_entry_for_entry_with_japanese_titles(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """All 77 feeds through one server and the real poller (a second poll only for a feed that
    shares articles with an earlier one); per feed, the rows stored against the independent
    count and, for Japanese feeds, titles that are Japanese and not mojibake. The per-feed
    table is printed and attached to the failure."""
    corpus = load_corpus()
    assert len(corpus) == 77, f"the corpus has {len(corpus)} files, its README says 77"
    urls = {f.file: feed_server.url(f.path) for f in corpus}
    expectations = expected_counts(corpus, urls)
    for feed in corpus:
        serve(feed_server, feed.path, feed.served, feed.content_type, gzipped=feed.gzipped)
    waves: dict[int, list[SourceSpec]] = {}
    for e in expectations:
        spec = SourceSpec(url=urls[e.feed.file], name=e.feed.file, category="research")
        waves.setdefault(e.wave, []).append(spec)

    async with open_app(poll_settings(tmp_path), fetching=True) as app:
        stored = await poll_in_waves(app, [waves[w] for w in sorted(waves)])

    rows: list[list[str]] = []
    failures: list[str] = []
    for e in expectations:
        name = e.feed.file
        got = stored[name]
        problems = []
        if len(got.titles) != e.count:
            problems.append(f"stored {len(got.titles)}, expected {e.count}")
        ja = ""
        if e.feed.language == "ja":
            own = decoded_titles(e.feed.document)
            want_share, got_share = japanese_share(own), japanese_share(got.titles)
            markers, own_markers = mojibake_markers(got.titles), mojibake_markers(own)
            ja = f"{got_share:.0%}/{want_share:.0%} m={markers}"
            if got_share < _JAPANESE_SHARE_KEPT * want_share:
                problems.append(f"Japanese titles {got_share:.0%}, the feed's own {want_share:.0%}")
            if markers > own_markers + _MOJIBAKE_ALLOWED:
                sample = next((t for t in got.titles if _MOJIBAKE.search(t)), "")
                problems.append(f"{markers} mojibake markers, e.g. {sample[:40]!r}")
        rows.append(
            [
                name,
                e.feed.language,
                e.method,
                str(e.feed.feedparser_entries),
                str(e.count) + (f" (-{e.seen_earlier} earlier)" if e.seen_earlier else ""),
                str(len(got.titles)),
                ja,
                "FAIL" if problems else "ok",
                (got.error or "")[:60],
            ]
        )
        if problems:
            failures.append(f"{name}: " + "; ".join(problems))
    table = _table(
        ["feed", "lang", "counted by", "manifest", "expected", "stored", "ja titles", "", "error"],
        rows,
    )
    total_expected = sum(e.count for e in expectations)
    total_stored = sum(len(s.titles) for s in stored.values())
    summary = (
        f"{len(failures)} of {len(corpus)} feeds failed; stored {total_stored} of "
        f"{total_expected} expected entries"
    )
    print(f"\n{table}\n{summary}")
    assert not failures, f"{summary}\n" + "\n".join(failures) + f"\n\n{table}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def test_the_independent_count_reads_the_corpus_as_its_readme_describes() -> None:
    """The expected-count function itself, on facts the corpus README states: a check that it is
    not trivially agreeing with whatever the poller stores."""
    corpus = {f.file: f for f in load_corpus()}
    urls = {name: f"http://127.0.0.1:1{f.path}" for name, f in corpus.items()}
    by_file = {e.feed.file: e for e in expected_counts(list(corpus.values()), urls)}
    # feedparser sees 20 entries, 10 of them phantoms of <item/> nested in items.
    assert by_file["en_illegally_nested.rss"].count == 10
    # 50 items, two pairs with the same guid.
    assert by_file["en_scriptingnews_titleless.rss"].count == 48
    # The gzip body holds 25 items; feedparser on the raw bytes sees none.
    assert by_file["en_nshipster_raw_gzip_body.xml.gz"].count == 25
    # Truncated mid-channel: no entry at all.
    assert by_file["en_reuters_truncated.rss"].count == 0
    # tDiary's entries share pages and differ by fragment only; none may merge.
    assert by_file["ja_tls_tdiary_rsscgi_eucjp.rdf"].count == 34
    # The two snapshots of one blog share 9 posts: the later file in the manifest stores the
    # rest only, and is polled after the earlier one.
    newer, older = (
        by_file["en_russcox_2019_snapshot.atom"],
        by_file["en_russcox_2017_snapshot.atom"],
    )
    assert (newer.count, newer.wave) == (19, 1)
    assert (older.count, older.seen_earlier, older.wave) == (8, 9, 2)
    # Decoded as browsers do, the CP932 and the "broken" EUC-JP feeds are Japanese throughout.
    for name in ("ja_ymoto_atom03_cp932.xml", "ja_1470net_mylist_eucjp_broken.rdf"):
        titles = decoded_titles(corpus[name].document)
        assert len(titles) == corpus[name].feedparser_entries
        assert japanese_share(titles) >= 0.9 and mojibake_markers(titles) == 0, titles[:3]


# -- hand-made cases the corpus has no real file for -----------------------------------------

_SJIS_TITLES: Final = (
    "①新型AIチップ「Ⅲ」を㈱ほしぞらが発表",  # NEC row 13: not in JIS X 0208, so not Shift_JIS
    "髙橋研究室、№1の日本語モデルを公開",  # an IBM extension kanji
    "生成AIの規制案、意見募集を開始",  # plain JIS X 0208
)


@dataclass(frozen=True, slots=True)
class Case:
    """A hand-made feed: its bytes as a server sends them and the titles it must store."""

    name: str
    body: bytes
    content_type: str
    titles: tuple[str, ...]


def rss2(
    base: str,
    titles: Sequence[str],
    *,
    declaration: str | None,
    links: Sequence[str] | None = None,
    guids: bool = True,
) -> str:
    """An RSS 2.0 document (text, to be encoded by the caller) whose links point at the test
    server, so a fetch of an article page stays on loopback."""
    items = []
    for i, title in enumerate(titles):
        link = links[i] if links is not None else f"{base}/item-{i}"
        guid = f"<guid isPermaLink='false'>{escape(base)}/guid-{i}</guid>" if guids else ""
        items.append(
            f"<item><title>{escape(title)}</title><link>{escape(link)}</link>{guid}"
            f"<pubDate>Mon, 23 Nov 2026 0{i}:00:00 +0900</pubDate>"
            f"<description>{escape(title)} {escape(title)}</description></item>"
        )
    head = f'<?xml version="1.0" encoding="{declaration}"?>\n' if declaration else ""
    return (
        f'{head}<rss version="2.0"><channel><title>hand-made</title><link>{escape(base)}/</link>'
        f"<description>case</description>{''.join(items)}</channel></rss>\n"
    )


def decoding_cases(base: str) -> list[Case]:
    """One feed per WHATWG rule the corpus does not exercise, each with titles that a wrong
    decoder turns into something else."""
    rss = _CONTENT_TYPES["rss"]
    cases = [
        Case(
            f"rss2-{label}-cp932",
            rss2(f"{base}/{label}", _SJIS_TITLES, declaration=label).encode("cp932"),
            rss,
            _SJIS_TITLES,
        )
        for label in ("Shift_JIS", "x-sjis", "MS_Kanji", "windows-31j")
    ]
    nec = ("ξ;゜⊿゜)ξ ①②の話", "生成AIの規制案")
    gbk = ("朱镕基谈人工智能",)  # 镕 is in GBK/GB 18030, not in GB 2312
    cp1252 = ("“Smart” quotes cost 5 € – a dash",)
    latin = ("Café société",)
    japanese = ("生成AIの規制案、意見募集を開始", "日本語モデルを公開")
    cases += [
        Case(
            "euc-jp-nec-row-13",
            rss2(f"{base}/eucjp", nec, declaration="EUC-JP").encode("euc_jis_2004"),
            rss,
            nec,
        ),
        Case(
            "gb2312-label-gbk-bytes",
            rss2(f"{base}/gb", gbk, declaration="gb2312").encode("gb18030"),
            rss,
            gbk,
        ),
        Case(
            "iso-8859-1-label-cp1252-bytes",
            rss2(f"{base}/latin1", cp1252, declaration="iso-8859-1").encode("cp1252"),
            rss,
            cp1252,
        ),
        Case(
            "us-ascii-label-8bit-bytes",
            rss2(f"{base}/ascii", latin, declaration="us-ascii").encode("cp1252"),
            rss,
            latin,
        ),
        Case(
            "utf-8-bom-over-a-shift_jis-declaration",
            codecs.BOM_UTF8
            + rss2(f"{base}/bom", japanese, declaration="Shift_JIS").encode("utf-8"),
            rss,
            japanese,
        ),
        Case(
            "http-charset-over-the-declaration",
            rss2(f"{base}/charset", japanese, declaration="EUC-JP").encode("utf-8"),
            f"{rss}; charset=utf-8",
            japanese,
        ),
        Case(
            "text/xml-without-charset-is-not-us-ascii",
            rss2(f"{base}/textxml", japanese, declaration="UTF-8").encode("utf-8"),
            "text/xml",
            japanese,
        ),
    ]
    return cases


async def test_hand_made_feeds_decode_as_browsers_do(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Each WHATWG/RFC 7303 rule on a feed of its own; every title must be stored exactly."""
    cases = decoding_cases(feed_server.url("/pages"))
    specs = []
    for i, case in enumerate(cases):
        path = f"/case-{i}.xml"
        serve(feed_server, path, case.body, case.content_type, gzipped=False)
        specs.append(SourceSpec(url=feed_server.url(path), name=case.name, category="research"))

    async with open_app(poll_settings(tmp_path), fetching=True) as app:
        stored = await poll_in_waves(app, [specs])

    failures = []
    for case in cases:
        got = stored[case.name]
        if sorted(got.titles) != sorted(case.titles):
            failures.append(f"{case.name}: stored {got.titles!r}, expected {list(case.titles)!r}")
    assert not failures, "\n".join(failures)


async def test_euc_jp_with_a_few_invalid_bytes_stays_japanese(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Invalid bytes are replaced where they are; the feed is not reread as Latin-1."""
    base = feed_server.url("/pages/broken")
    titles = ["日本語モデルを公開", "生成AIの規制案BROKENX、意見募集を開始", "半導体の新工場"]
    body = rss2(base, titles, declaration="EUC-JP").encode("euc_jis_2004")
    # 0xFF starts no EUC-JP sequence; 0xFE then "X" is a lead byte with an ASCII trail, which
    # a WHATWG decoder replaces while keeping the "X": the damage cannot spread.
    body = body.replace(b"BROKEN", b"\xff\xfe")
    serve(feed_server, "/broken.xml", body, _CONTENT_TYPES["rss"], gzipped=False)
    spec = SourceSpec(url=feed_server.url("/broken.xml"), name="broken", category="research")

    async with open_app(poll_settings(tmp_path), fetching=True) as app:
        stored = (await poll_in_waves(app, [[spec]]))["broken"].titles

    assert len(stored) == 3, stored
    assert {titles[0], titles[2]} <= set(stored), stored
    damaged = next(t for t in stored if t not in (titles[0], titles[2]))
    assert damaged.startswith("生成AIの規制案") and damaged.endswith("X、意見募集を開始"), damaged
    assert "\ufffd" in damaged and mojibake_markers(stored) <= 2, stored


async def test_hand_made_entry_identities_never_merge_two_posts(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """An RSS 2.0 diary without guids whose posts share one page and differ by fragment (the
    corpus's tDiary feeds have rdf:about ids), and an Atom entry with an id and no link (the
    corpus has none): every post is stored."""
    page = feed_server.url("/pages/diary/?date=20260123")
    diary_titles = ["朝の記録", "昼の記録", "夜の記録"]
    diary = rss2(
        feed_server.url("/pages/diary"),
        diary_titles,
        declaration="UTF-8",
        links=[f"{page}#p0{i}" for i in range(1, 4)],
        guids=False,
    )
    site = feed_server.url("/pages/notes/")
    atom = (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>notes</title><id>urn:uuid:notes</id><link href="{site}"/>'
        "<updated>2026-11-23T09:00:00+09:00</updated>"
        "<entry><title>リンクのない投稿</title><id>urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427</id>"
        "<updated>2026-11-23T09:00:00+09:00</updated><content>本文だけがある投稿。</content></entry>"
        f'<entry><title>リンクのある投稿</title><id>urn:uuid:2</id><link href="{site}2"/>'
        "<updated>2026-11-23T08:00:00+09:00</updated><content>本文。</content></entry>"
        "</feed>\n"
    )
    serve(feed_server, "/diary.xml", diary.encode(), _CONTENT_TYPES["rss"], gzipped=False)
    serve(feed_server, "/notes.atom", atom.encode(), _CONTENT_TYPES["atom"], gzipped=False)
    specs = [
        SourceSpec(url=feed_server.url("/diary.xml"), name="diary", category="research"),
        SourceSpec(url=feed_server.url("/notes.atom"), name="notes", category="research"),
    ]
    # The count function agrees with what was written by hand.
    feeds = {"diary": diary.encode(), "notes": atom.encode()}
    assert {n: len({e.identity for e in read_entries(b)[1]}) for n, b in feeds.items()} == {
        "diary": 3,
        "notes": 2,
    }

    async with open_app(poll_settings(tmp_path), fetching=True) as app:
        stored = await poll_in_waves(app, [specs])

    assert sorted(stored["diary"].titles) == sorted(diary_titles)
    assert sorted(stored["notes"].titles) == ["リンクのある投稿", "リンクのない投稿"]
