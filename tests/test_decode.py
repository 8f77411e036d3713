"""jobs.decode: feed bytes decoded as browsers do (WHATWG Encoding Standard, RFC 7303 order).

Two halves. The real publishers' feeds in `../shared/realfeeds/` are transcoded and then parsed
by feedparser the way `jobs.feed_parse` calls it: the 19 Japanese ones must come out Japanese
(titles with kana and kanji, no mojibake, the manifest's feed title), the 58 others with the
same entries as plain feedparser and titles at least as good. Then small hand-made byte
strings pin each rule: BOM against declaration against HTTP charset, the WHATWG labels, the
windows-1252 C1 bytes, replacement of invalid bytes, UTF-16, sniffing, and the output contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any, Final

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.decode import UTF8_DECLARATION, Decoded, lookup_label, transcode_feed
from tests.conftest import REALFEEDS, realfeeds_dir

FEED_URL: Final = "http://127.0.0.1:8080/feed"

_JAPANESE: Final = re.compile("[\u3041-\u30ff\u4e00-\u9fff]")
_KANA: Final = re.compile("[\u3041-\u30ff]")
# What a Japanese title misread as windows-1252 or Latin-1 is made of: Latin-1 letters and
# symbols, Latin Extended, the windows-1252 punctuation of the 0x80 row. Spared: × ÷ ° ± ´ ·,
# which Japanese titles use (a kaomoji in the corpus has ´).
_MOJIBAKE: Final = re.compile(
    "[\u0080-\u00af\u00b2\u00b3\u00b5\u00b6\u00b8-\u00d6\u00d8-\u00f6\u00f8-\u024f"
    "\u0192\u201a\u201e\u2020\u2021\u2030\ufffd]"
)
# JIS X 0208 cells that Python's euc_jp/shift_jis map as JIS does and browsers (index jis0208)
# as Windows does. The manifest's titles were made with Python's codecs, so compare modulo these.
_JIS_VARIANTS: Final = str.maketrans("～∥－￠￡￢", "〜‖−¢£¬")


# --- The real feeds. --------------------------------------------------------------------------


@cache
def _manifest() -> dict[str, dict[str, Any]] | None:
    path = REALFEEDS / "manifest.json"
    if not path.is_file():
        return None
    records: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return {record["file"]: record for record in records}


def _corpus_files(japanese: bool) -> list[str]:
    """File names for parametrisation; one placeholder when the corpus is absent, so that the
    test runs and says why it cannot (a skip, or a failure under CI)."""
    manifest = _manifest()
    if manifest is None:
        return ["<corpus absent>"]
    return [name for name in manifest if name.startswith("ja_") == japanese]


def _record(name: str) -> tuple[dict[str, Any], bytes]:
    corpus = realfeeds_dir()
    manifest = _manifest()
    assert manifest is not None
    return manifest[name], (corpus / name).read_bytes()


def _parse(decoded: Decoded) -> Any:
    """feedparser as jobs.feed_parse calls it, with the transcoder's output."""
    headers = {"content-location": FEED_URL, "content-type": decoded.content_type}
    return feedparser.parse(
        decoded.body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )


def _plain(raw: bytes) -> Any:
    """feedparser deciding the encoding itself (how the manifest's figures were made)."""
    return feedparser.parse(raw, sanitize_html=False, resolve_relative_uris=False)


def _mojibake(text: str) -> bool:
    return _MOJIBAKE.search(text) is not None or any(s in text for s in ("‚ł", "¤Î", "Ã"))


def _badness(text: str) -> int:
    """Characters that a wrong decode leaves: U+FFFD, C1 controls, 'Ã'/'Â' of UTF-8 as Latin-1."""
    return len(re.findall("[\ufffd\u0080-\u009f]|[ÃÂ][\u0080-\u00bf]", text))


def test_the_mojibake_check_sees_mojibake() -> None:
    """The checks below could fail: a CP932 title read as windows-1252, as feedparser did."""
    title = "年間走行距離報告～良いお年を！①"
    misread = title.encode("cp932").decode("cp1252", "replace")
    assert _mojibake(misread)
    assert not _JAPANESE.search(misread)
    assert not _mojibake(title)
    assert _mojibake("¡Ønaoya¤Î¤Ï¤Æ¤Ê")  # the EUC-JP feed as the issue saw it


@pytest.mark.parametrize("name", _corpus_files(japanese=True))
def test_japanese_feeds_decode_to_japanese(name: str) -> None:
    record, raw = _record(name)
    # text/xml without charset: RFC 3023 said us-ascii; RFC 7303 and browsers let the
    # declaration decide.
    decoded = transcode_feed(raw, "text/xml")
    parsed = _parse(decoded)

    declared = record["declared_encoding"]
    assert decoded.encoding == (lookup_label(declared) if declared else "UTF-8")
    # Even the two "broken" feeds have no byte a browser cannot decode: ① and ～ are CP932,
    # ⊿ is in index jis0208's NEC row 13.
    assert decoded.replacements == 0, decoded
    assert len(parsed.entries) == record["feedparser_entries"]

    titles = [entry.get("title", "") for entry in parsed.entries]
    non_ascii = [title for title in titles if not title.isascii()]
    assert non_ascii, "every Japanese feed of the corpus has non-ASCII titles"
    assert not [title for title in titles if _mojibake(title)]
    japanese = [title for title in non_ascii if _JAPANESE.search(title)]
    assert len(japanese) >= 0.5 * len(non_ascii), non_ascii
    assert _KANA.search("".join(titles))

    feed_title = parsed.feed.get("title", "")
    assert not _mojibake(feed_title)
    if record.get("feed_title"):
        assert feed_title.translate(_JIS_VARIANTS) == record["feed_title"].translate(_JIS_VARIANTS)


def test_the_broken_japanese_feeds_keep_their_special_characters() -> None:
    """The issue's two mojibake feeds: the characters that broke strict decoders survive."""
    _, cp932 = _record("ja_ymoto_atom03_cp932.xml")
    text = transcode_feed(cp932, None).body.decode("utf-8")
    assert "①" in text
    assert "BD-1で楽々通勤～BD-wonderful" in text
    _, euc = _record("ja_1470net_mylist_eucjp_broken.rdf")
    text = transcode_feed(euc, None).body.decode("utf-8")
    assert "『ξ;゜⊿゜)ξ" in text  # 0xADF9 at byte 9474: only in the eucJP-ms family
    assert "naoyaのはてなダイアリー" in text


@pytest.mark.parametrize("name", _corpus_files(japanese=False))
def test_other_feeds_keep_their_entries_and_titles(name: str) -> None:
    record, raw = _record(name)
    decoded = transcode_feed(raw, "text/xml")
    ours, plain = _parse(decoded), _plain(raw)
    assert len(ours.entries) == len(plain.entries) == record["feedparser_entries"]
    assert decoded.source != "fallback"
    assert decoded.body.decode("utf-8").startswith(UTF8_DECLARATION)

    declared = (record["declared_encoding"] or "").lower()
    invalid = "bytes_invalid_for_declared_or_default_encoding" in record["flags"]
    if declared in ("", "utf-8") and not invalid and not name.endswith(".gz"):
        assert decoded.encoding == "UTF-8"
        return
    if name.endswith(".gz"):
        return  # gzip bytes: nothing to read in any encoding, as for feedparser
    # The non-UTF-8 feeds (ISO-8859-1 → windows-1252, windows-1251, ISO-8859-7, gb2312 → GBK,
    # and Latin-1 without a declaration): titles at least as good as feedparser's own decoding.
    assert decoded.encoding != "UTF-8"
    assert decoded.replacements == 0
    pairs = zip(
        (entry.get("title", "") for entry in ours.entries),
        (entry.get("title", "") for entry in plain.entries),
        strict=True,
    )
    for mine, theirs in pairs:
        assert mine == theirs or _badness(mine) <= _badness(theirs), (mine, theirs)
    assert ours.feed.get("title") == record["feed_title"]
    assert not any(_badness(entry.get("title", "")) for entry in ours.entries)


# --- Hand-made cases, one rule each. ----------------------------------------------------------


def _doc(encoding: str | None, text: str, codec: str) -> bytes:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else ""
    return (declaration + f"<rss><channel><title>{text}</title></channel></rss>").encode(codec)


def _text(decoded: Decoded) -> str:
    return decoded.body.decode("utf-8")


def _title(decoded: Decoded) -> str:
    match = re.search("<title>(.*)</title>", _text(decoded), re.S)
    assert match is not None
    return match.group(1)


JA: Final = "日本語のフィード①～"  # ① and ～ are CP932: not in Python's shift_jis


def test_bom_beats_declaration_and_http_charset() -> None:
    body = b"\xef\xbb\xbf" + _doc("Shift_JIS", JA, "utf-8")
    decoded = transcode_feed(body, "application/rss+xml; charset=EUC-JP")
    assert (decoded.encoding, decoded.source) == ("UTF-8", "bom")
    assert _title(decoded) == JA
    assert _text(decoded).startswith(UTF8_DECLARATION)  # no BOM, declaration rewritten
    assert "EUC-JP" in decoded.notes[0]


@pytest.mark.parametrize(("bom", "codec", "encoding"), [
    (b"\xff\xfe", "utf-16-le", "UTF-16LE"),
    (b"\xfe\xff", "utf-16-be", "UTF-16BE"),
])  # fmt: skip
def test_utf16_with_bom(bom: bytes, codec: str, encoding: str) -> None:
    body = bom + _doc("utf-16", JA + "😀", codec)
    decoded = transcode_feed(body, "text/xml; charset=Shift_JIS")
    assert (decoded.encoding, decoded.source, decoded.replacements) == (encoding, "bom", 0)
    assert _title(decoded) == JA + "😀"
    assert _parse(decoded).feed["title"] == JA + "😀"


def test_utf16_without_bom_is_recognised_by_its_shape() -> None:
    decoded = transcode_feed(_doc("UTF-16", JA, "utf-16-le"), None)
    assert (decoded.encoding, decoded.source) == ("UTF-16LE", "sniff")
    assert _title(decoded) == JA


def test_utf16_with_a_lone_surrogate_gets_one_replacement() -> None:
    body = b"\xff\xfe" + _doc(None, "Q", "utf-16-le").replace(b"Q\x00", b"\x00\xd8Q\x00")
    decoded = transcode_feed(body, None)
    assert decoded.replacements == 1
    assert _title(decoded) == "\ufffdQ"


def test_http_charset_beats_the_declaration() -> None:
    """RFC 7303 §3.2: the EUC-JP bytes are labelled EUC-JP by HTTP, Shift_JIS inside."""
    decoded = transcode_feed(
        _doc("Shift_JIS", "日本語のフィード", "euc_jp"), "text/xml; charset=euc-jp"
    )
    assert (decoded.encoding, decoded.source, decoded.label) == ("EUC-JP", "http", "euc-jp")
    assert _title(decoded) == "日本語のフィード"
    assert decoded.replacements == 0


def test_http_charset_contradicted_by_the_bytes_loses_to_a_clean_declaration() -> None:
    """nginx's `charset utf-8;` on a Shift_JIS feed: a browser would show U+FFFD everywhere."""
    body = _doc("Shift_JIS", JA, "cp932")
    decoded = transcode_feed(body, "application/rss+xml; charset=utf-8")
    assert (decoded.encoding, decoded.source, decoded.replacements) == ("Shift_JIS", "xml", 0)
    assert _title(decoded) == JA
    assert "utf-8" in decoded.notes[0]


def test_http_charset_with_a_few_bad_bytes_still_wins() -> None:
    """When the declaration does no better, the HTTP charset stands, U+FFFD for the bad byte."""
    body = _doc("EUC-JP", "日本", "cp932").replace(b"</title>", b"\xff</title>")
    decoded = transcode_feed(body, "text/xml; charset=Shift_JIS")
    assert (decoded.encoding, decoded.source, decoded.replacements) == ("Shift_JIS", "http", 1)


def test_text_xml_without_charset_uses_the_declaration() -> None:
    """RFC 3023's us-ascii default for text/* is gone (RFC 7303); feedparser still applies it."""
    body = _doc("Shift_JIS", JA, "cp932")
    decoded = transcode_feed(body, "text/xml")
    assert (decoded.encoding, decoded.source) == ("Shift_JIS", "xml")
    assert decoded.content_type == "text/xml; charset=utf-8"
    assert _parse(decoded).feed["title"] == JA


def test_utf16_http_charset_on_an_ascii_body_is_ignored() -> None:
    decoded = transcode_feed(_doc("utf-8", "é", "utf-8"), "text/xml; charset=utf-16")
    assert (decoded.encoding, decoded.source) == ("UTF-8", "xml")
    assert _title(decoded) == "é"
    assert decoded.notes


def test_utf16_in_an_ascii_declaration_means_utf8() -> None:
    decoded = transcode_feed(_doc("UTF-16", "é", "utf-8"), None)
    assert decoded.encoding == "UTF-8"
    assert _title(decoded) == "é"


@pytest.mark.parametrize(
    "label", ["Shift_JIS", "shift_jis", "x-sjis", "MS_Kanji", "csShiftJIS", "windows-31j", "cp932"]
)
def test_shift_jis_labels_decode_as_windows_31j(label: str) -> None:
    decoded = transcode_feed(_doc(label, JA, "cp932"), None)
    assert (decoded.encoding, decoded.replacements) == ("Shift_JIS", 0)
    assert _title(decoded) == JA  # ① (0x8740) and ～ (0x8160 → U+FF5E), as browsers show them


@pytest.mark.parametrize("label", ["EUC-JP", "x-euc-jp", "cseucpkdfmtjapanese"])
def test_euc_jp_with_its_extensions(label: str) -> None:
    # ① ⊿ (NEC row 13), 〜 (A1C1 → U+FF5E like index jis0208), ～ from JIS X 0212 (8FA2B7),
    # half-width katakana (8E) and a JIS X 0212 kanji.
    body = (
        f'<?xml version="1.0" encoding="{label}"?><rss><channel><title>'.encode()
        + bytes.fromhex("ada1 adf9 a1c1 8fa2b7 8eb1 8fb0a1 a4cf")
        + b"</title></channel></rss>"
    )
    decoded = transcode_feed(body, None)
    assert (decoded.encoding, decoded.replacements) == ("EUC-JP", 0)
    assert _title(decoded) == "①⊿～～ｱ丂は"


def test_euc_jp_invalid_bytes_are_replaced_in_place() -> None:
    """The issue's case: a few bad bytes in an EUC-JP feed. One U+FFFD each, the text around
    them intact, and a bad lead byte does not swallow the `<` after it."""
    good = "はてなダイアリー".encode("euc_jp")
    body = (
        b'<?xml version="1.0" encoding="EUC-JP"?><rss><channel><title>'
        + good
        + b"\xa4\xff"  # lead + invalid trail: one U+FFFD for both bytes
        + good
        + b"\x8e\x41"  # SS2 + ASCII: U+FFFD and the A kept
        + good
        + b"\xa4</title></channel></rss>"
    )
    decoded = transcode_feed(body, None)
    assert decoded.replacements == 3
    assert _title(decoded) == "はてなダイアリー\ufffdはてなダイアリー\ufffdAはてなダイアリー\ufffd"
    assert _parse(decoded).feed["title"] == _title(decoded)


def test_shift_jis_invalid_bytes_are_replaced_not_reinterpreted() -> None:
    good = "さらなる防寒対策①".encode("cp932")
    body = b'<?xml version="1.0" encoding="Shift_JIS"?><rss><channel><title>'
    # 0x85 0x40: an unmapped pair whose second byte is ASCII, so "@" stays (WHATWG restores
    # it); 0x81 0xAD: one error for both bytes (Python's codec would add a half-width ｭ);
    # 0xA0 alone: an error (Python's cp932 gives U+F8F0); 0x81 before "<": the "<" stays.
    body += good + b"\x85\x40" + good + b"\x81\xad" + good + b"\xa0" + good
    body += b"\x81</title></channel></rss>"
    decoded = transcode_feed(body, "application/atom+xml")
    assert decoded.replacements == 4
    expected = "{0}\ufffd@{0}\ufffd{0}\ufffd{0}\ufffd".format("さらなる防寒対策①")
    assert _title(decoded) == expected


def test_windows_1252_covers_iso_8859_1_ascii_and_the_c1_bytes() -> None:
    # 0x80 €, 0x81 and 0x9D (undefined in Python's cp1252, U+0081/U+009D in WHATWG), 0x93 “
    raw = b"\x80\x81\x93caf\xe9\x94\x9d"
    for label in ("iso-8859-1", "ISO_8859-1", "latin1", "us-ascii", "ascii", "windows-1252"):
        body = b'<?xml version="1.0" encoding="' + label.encode() + b'"?><rss><title>'
        decoded = transcode_feed(body + raw + b"</title></rss>", None)
        assert (decoded.encoding, decoded.replacements) == ("windows-1252", 0), label
        assert _title(decoded) == "€\u0081“café”\u009d", label


def test_single_byte_encodings_follow_the_whatwg_indexes() -> None:
    cases = [
        ("koi8-u", b"\xae\xbe", "ўЎ"),  # KOI8-U 2009, not Python's older table
        ("windows-1255", b"\xca", "\u05ba"),
        ("iso-8859-7", b"\xc5\xeb\xeb\xe7\xed\xe9\xea\xdc", "Ελληνικά"),
        ("windows-1251", b"\xcd\xee\xe2\xee\xf1\xf2\xe8", "Новости"),
        ("iso-8859-3", b"\xa5", "\ufffd"),  # undefined in the standard too
    ]
    for label, raw, expected in cases:
        body = f'<?xml version="1.0" encoding="{label}"?><t>'.encode() + raw + b"</t>"
        decoded = transcode_feed(body, None)
        assert _text(decoded).endswith(f"<t>{expected}</t>"), label


def test_gb2312_decodes_as_gb18030() -> None:
    body = b'<?xml version="1.0" encoding="gb2312"?><t>' + "投资资讯网".encode("gb2312")
    body += "é😀".encode("gb18030") + b"\x80</t>"
    decoded = transcode_feed(body, None)
    assert (decoded.encoding, decoded.replacements) == ("GBK", 0)
    assert _text(decoded).endswith("<t>投资资讯网é😀€</t>")


def test_replacement_encodings_are_not_decoded() -> None:
    """WHATWG: ISO-2022-KR, HZ and friends can hide markup; the whole body is one U+FFFD."""
    decoded = transcode_feed(_doc("iso-2022-kr", "x", "ascii"), None)
    assert (decoded.encoding, decoded.replacements) == ("replacement", 1)
    assert _text(decoded) == UTF8_DECLARATION + "\n\ufffd"


def test_unknown_labels_fall_through() -> None:
    decoded = transcode_feed(_doc("no-such-charset", "é", "utf-8"), "text/xml; charset=bogus")
    assert (decoded.encoding, decoded.source) == ("UTF-8", "default")
    assert _title(decoded) == "é"
    assert len(decoded.notes) == 2


def test_python_only_labels_are_used_when_safe() -> None:
    decoded = transcode_feed(_doc("euc_jis_2004", "はかた号", "euc_jis_2004"), None)
    assert (decoded.encoding, _title(decoded)) == ("euc_jis_2004", "はかた号")
    # UTF-7 can smuggle markup past an ASCII scan; rot13 and base64 are not text encodings.
    for label in ("utf-7", "rot13", "base64", "unicode_escape"):
        decoded = transcode_feed(_doc(label, "plain", "ascii"), None)
        assert decoded.encoding == "UTF-8", label


def test_undeclared_bytes_are_sniffed() -> None:
    sjis = transcode_feed(_doc(None, "日本語のフィードです", "cp932"), None)
    assert (sjis.encoding, sjis.source, _title(sjis)) == (
        "Shift_JIS",
        "sniff",
        "日本語のフィードです",
    )
    euc = transcode_feed(_doc(None, "日本語のフィードです", "euc_jp"), None)
    assert (euc.encoding, euc.source, _title(euc)) == ("EUC-JP", "sniff", "日本語のフィードです")
    # Latin-1 French decodes "cleanly" as Shift_JIS too (é + ASCII is a kanji) but has no kana.
    latin = transcode_feed(_doc(None, "Le Cercle Psy : santé mentale, été", "latin-1"), None)
    assert (latin.encoding, _title(latin)) == ("windows-1252", "Le Cercle Psy : santé mentale, été")
    # Mostly UTF-8 with one stray byte stays UTF-8.
    mostly = _doc(None, "日本語のフィード", "utf-8").replace(b"</title>", b"\xff</title>")
    decoded = transcode_feed(mostly, None)
    assert (decoded.encoding, decoded.replacements, _title(decoded)) == (
        "UTF-8",
        1,
        "日本語のフィード\ufffd",
    )


def test_plain_utf8_and_ascii_need_no_declaration() -> None:
    decoded = transcode_feed(_doc(None, "Café", "utf-8"), None)
    assert (decoded.encoding, decoded.source, decoded.replacements) == ("UTF-8", "default", 0)
    assert _text(decoded) == UTF8_DECLARATION + "\n" + _doc(None, "Café", "utf-8").decode()


def test_output_contract() -> None:
    # Whitespace before the declaration (three real feeds): removed, so expat parses strictly.
    body = b"\n\n  " + _doc("Shift_JIS", JA, "cp932")
    decoded = transcode_feed(body, 'application/rss+xml; charset="Shift_JIS"')
    text = _text(decoded)
    assert text.startswith(UTF8_DECLARATION + "<rss>")
    assert text.count("<?xml") == 1
    assert decoded.content_type == "application/rss+xml; charset=utf-8"
    parsed = _parse(decoded)
    assert not parsed.bozo
    assert parsed.feed["title"] == JA
    assert transcode_feed(b"", None).body == b""
    assert transcode_feed(b"<rss/>", None).content_type == "application/xml; charset=utf-8"


def test_feedparser_cannot_misdecode_the_output() -> None:
    """The transcoded bytes with the returned Content-Type parse to the same title whatever the
    server's media type was: the charset and declaration both say utf-8."""
    body = _doc("Shift_JIS", JA, "cp932")
    for content_type in (None, "text/xml", "text/html", "application/octet-stream"):
        decoded = transcode_feed(body, content_type)
        assert _parse(decoded).feed["title"] == JA, content_type


def test_binary_garbage_is_replaced_at_c_speed_with_the_same_count() -> None:
    """Past the handler budget the decode is redone with Python's C handler; the count of
    replacements and the kept ASCII stay right (no timing asserted)."""
    body = b'<?xml version="1.0" encoding="Shift_JIS"?><t>' + b"\x81 " * 30_000 + b"</t>"
    decoded = transcode_feed(body, None)
    assert (decoded.encoding, decoded.source, decoded.replacements) == ("Shift_JIS", "xml", 30_000)
    assert _text(decoded).endswith("<t>" + "\ufffd " * 30_000 + "</t>")
    # … and the next decode is budgeted afresh.
    assert transcode_feed(_doc("Shift_JIS", JA, "cp932"), None).replacements == 0


def test_replacement_counts_are_per_thread() -> None:
    def work(n: int) -> int:
        body = _doc("EUC-JP", "", "ascii").replace(b"</title>", b"\xff" * n + b"</title>")
        return transcode_feed(body, None).replacements

    sizes = [n % 50 + 1 for n in range(400)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(work, sizes)) == sizes


_LABELS: Final = [
    None,
    "text/xml",
    "application/rss+xml; charset=utf-8",
    "text/xml; charset=Shift_JIS",
    "text/xml; charset=euc-jp",
    "text/xml; charset=gb2312",
    "text/xml; charset=big5",
    "text/xml; charset=euc-kr",
    "text/xml; charset=iso-2022-jp",
    "text/xml; charset=utf-16",
    "text/xml; charset=x-user-defined",
    "text/xml; charset=nonsense",
]
_PREFIXES: Final = [
    b"",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
    b"<\x00?\x00",
    b'<?xml version="1.0" encoding="Shift_JIS"?>',
    b"<?xml version='1.0' encoding='EUC-JP'?>",
    b'  <?xml version="1.0" encoding="gb18030"?>',
    b'<?xml version="1.0" encoding="utf-7"?>',
]


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(_PREFIXES),
    data=st.binary(max_size=300),
    content_type=st.sampled_from(_LABELS),
)
def test_never_raises_and_always_gives_utf8(
    prefix: bytes, data: bytes, content_type: str | None
) -> None:
    decoded = transcode_feed(prefix + data, content_type)
    assert decoded.source != "fallback", decoded.notes  # no internal error was swallowed
    text = decoded.body.decode("utf-8")  # strict: always valid UTF-8
    assert text.startswith(UTF8_DECLARATION) or not (prefix + data)
    assert decoded.content_type.endswith("; charset=utf-8")
    assert decoded.replacements >= 0


_JAPANESE_TEXT: Final = st.text(
    alphabet=st.sampled_from(
        list("あいうえおかきくけこはてなのをん日本語漢字東京天気①～ｱｶ、。「」ー")
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(text=_JAPANESE_TEXT, label=st.sampled_from(["Shift_JIS", "EUC-JP", "UTF-8"]))
def test_japanese_round_trips(text: str, label: str) -> None:
    codec = {"Shift_JIS": "cp932", "EUC-JP": "euc_jis_2004", "UTF-8": "utf-8"}[label]
    if label == "EUC-JP":
        text = text.replace("～", "")  # euc_jis_2004 has no U+FF5E; browsers' EUC-JP does
    decoded = transcode_feed(_doc(label, text, codec), None)
    assert decoded.replacements == 0
    assert _title(decoded) == text


def _all_labels() -> Iterator[tuple[str, str]]:
    yield from (("Shift_JIS", "Shift_JIS"), ("x-sjis", "Shift_JIS"), ("MS_Kanji", "Shift_JIS"))
    yield from (("csShiftJIS", "Shift_JIS"), ("windows-31j", "Shift_JIS"), ("EUC-JP", "EUC-JP"))
    yield from (("x-euc-jp", "EUC-JP"), ("latin1", "windows-1252"), ("US-ASCII", "windows-1252"))
    yield from (("gb2312", "GBK"), ("x-gbk", "GBK"), ("chinese", "GBK"), (" utf8 ", "UTF-8"))
    yield from (("koi8-r", "KOI8-R"), ("iso-8859-9", "windows-1254"), ("tis-620", "windows-874"))


@pytest.mark.parametrize(("label", "encoding"), list(_all_labels()))
def test_label_table(label: str, encoding: str) -> None:
    assert lookup_label(label) == encoding
