"""Full-text search on a small corpus with known answers, on SQLite (FTS5) and PostgreSQL.

The corpus mixes Japanese articles and English ones with Japanese summaries. Every expected
answer below is written out by hand and, where it is a plain "contains this word" question,
also checked against a brute-force scan of the fixture texts, so a mistake in the corpus shows
up as a failure of the corpus check rather than as a silently weaker test.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import Session

from bot.app import App, handler_context, open_app, reindex
from bot.config import Settings
from handlers.filters import FilterError, SearchRequest, parse_search_text
from handlers.search import USAGE, handle_search
from storage.articles import NewArticle, insert_new_articles, set_story_ids
from storage.models import Summary
from storage.search.index import clear_index, index_articles
from storage.search.query import SearchPage, SearchQuery, search, snippet
from storage.search.terms import parse_query_text
from storage.sources import SourceSpec, add_missing_sources, list_sources, remove_source_by
from storage.summaries import save_summary
from storage.taxonomy import Taxonomy
from tests.conftest import make_settings
from tests.test_cli import ainews

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
TOKYO = ZoneInfo("Asia/Tokyo")


def ago(days: float, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


# ── the corpus ───────────────────────────────────────────────────────────────────────────────

SOURCES = {
    "itmedia": SourceSpec("https://rss.itmedia.example.jp/ai.xml", "ITmedia AI+", "products", "ja"),
    "nikkei": SourceSpec(
        "https://xtech.nikkei.example.jp/rss.xml", "日経クロステック", "japan", "ja"
    ),
    "impress": SourceSpec(
        "https://watch.impress.example.jp/rss.xml", "Impress Watch", "infra", "ja"
    ),
    "reuters": SourceSpec("https://reuters.example.com/tech.xml", "Reuters Technology", "policy"),
    "verge": SourceSpec("https://verge.example.com/ai.xml", "The Verge AI", "products"),
    "arxiv": SourceSpec("https://arxiv.example.org/cs.CL.rss", "arXiv cs.CL", "research"),
}


@dataclass(frozen=True)
class Sum:
    title_ja: str
    overview: str
    points: tuple[str, str, str]
    why: str
    keywords: tuple[str, ...]
    category: str


@dataclass(frozen=True)
class Doc:
    key: str
    source: str
    published: datetime
    title: str
    body: str
    summary: Sum | None = None
    story: str | None = None  # key of the story's first article

    @property
    def url(self) -> str:
        host = SOURCES[self.source].url.split("/")[2]
        return f"https://{host}/news/{self.key}"

    @property
    def language(self) -> str:
        return SOURCES[self.source].language

    def texts(self) -> list[str]:
        out = [self.title, self.body]
        if self.summary is not None:
            s = self.summary
            out += [s.title_ja, s.overview, *s.points, s.why, *s.keywords]
        return out


FILLER = "国内の研究機関は次世代の計算基盤について、今後十年の開発計画をまとめた。" * 5

DOCS = [
    Doc(
        "reg_title",
        "itmedia",
        ago(6),
        "政府、生成AIの規制に向けた新指針を公表",
        "政府は生成AIの開発者に対し、リスク評価と透明性の確保を求める指針案を公表した。"
        "意見募集は12月20日まで。",
        Sum(
            "政府、生成AI規制の新指針案を公表",
            "政府は生成AIの開発者にリスク評価と透明性の確保を求める指針案を公表した。",
            ("開発者にリスク評価を求める", "透明性の確保が柱", "意見募集は12月20日まで"),
            "国内でAIを開発・提供する企業の対応が必要になる。",
            ("生成AI", "指針", "政府"),
            "policy",
        ),
    ),
    Doc(
        "reg_body",
        "nikkei",
        ago(1),
        "EUのAI法、施行に向けた準備が本格化",
        "欧州連合（EU）のAI法は段階的に適用される。企業は規制対応の体制づくりを急いでいる。",
        Sum(
            "EUのAI法、施行準備が本格化",
            "欧州連合のAI法の段階適用に向け、企業の準備が進んでいる。",
            ("段階的に適用", "企業が体制を整備", "罰則も導入"),
            "欧州で事業を行う日本企業にも影響する。",
            ("EU", "AI法"),
            "policy",
        ),
    ),
    Doc(
        "export",
        "reuters",
        ago(2),
        "US tightens export controls on AI chips to China",
        "The Commerce Department announced new rules restricting exports of advanced Nvidia and "
        "AMD accelerators to China, escalating US-China tech tensions.",
        Sum(
            "米国、中国向けAIチップの輸出規制を強化",
            "米商務省は先端半導体の対中輸出規制を強化した。米中の技術摩擦が一段と激しくなる。",
            (
                "NVIDIAとAMDの先端GPUが対象",
                "中国企業への販売に許可が必要に",
                "米中対立の長期化が懸念",
            ),
            "データセンター向け半導体の供給網に影響する。",
            ("輸出規制", "半導体", "米中"),
            "policy",
        ),
    ),
    Doc(
        "nv_earnings",
        "reuters",
        ago(3),
        "Nvidia earnings beat expectations as data center sales soar",
        "NVIDIA reported quarterly revenue of $35 billion, driven by demand for its AI data "
        "center GPUs.",
        Sum(
            "NVIDIA決算、データセンター売上が急増し予想上回る",
            "エヌビディアの四半期決算は売上高350億ドルで市場予想を上回った。",
            ("データセンター部門が成長を牽引", "生成AI向けGPUの需要が旺盛", "次世代チップも順調"),
            "AIインフラ投資の勢いを示す。",
            ("NVIDIA", "決算", "データセンター"),
            "infra",
        ),
    ),
    Doc(
        "nv_gpu",
        "itmedia",
        ago(4),
        "ＮＶＩＤＩＡ、新型GPU「Blackwell Ultra」を発表",
        "エヌビディアは次世代GPUを発表した。大規模言語モデルの学習性能が大幅に向上するという。",
        Sum(
            "ＮＶＩＤＩＡ、新型GPU「Blackwell Ultra」を発表",
            "NVIDIAが学習性能を高めた新型GPUを発表した。",
            ("大規模言語モデルの学習が高速化", "出荷は来年前半", "価格は未公表"),
            "生成モデル開発の計算コストに関わる。",
            ("NVIDIA", "GPU"),
            "infra",
        ),
    ),
    Doc(  # no summary: indexed from its title and body only
        "sb_earnings",
        "nikkei",
        ago(2),
        "ソフトバンクグループ決算、AI投資で黒字転換",
        "ソフトバンクグループが発表した決算は、AI関連投資の評価益で黒字に転換した。"
        "米国のデータセンター事業にも投資する。",
    ),
    Doc(
        "acq_ja",
        "nikkei",
        ago(8),
        "楽天、AIスタートアップを買収",
        "楽天グループは対話AIを開発するスタートアップを買収すると発表した。買収額は非公開。",
        Sum(
            "楽天、対話AIのスタートアップを買収",
            "楽天グループが対話AIを開発する新興企業の買収を発表した。",
            ("買収額は非公開", "対話AIを自社サービスに組み込む", "人材の獲得も狙う"),
            "国内大手によるAI企業買収の動きが続く。",
            ("買収", "楽天", "対話AI"),
            "funding",
        ),
    ),
    Doc(
        "acq_en",
        "verge",
        ago(10),
        "Salesforce to acquire AI startup for $2 billion",
        "Salesforce said it would buy the company to strengthen its agent platform.",
        Sum(
            "セールスフォース、AI新興企業を20億ドルで買収へ",
            "米セールスフォースはAIエージェント基盤を強化するため新興企業を買収する。",
            ("買収額は20億ドル", "エージェント製品に統合", "年内に完了予定"),
            "業務向けAIエージェントの競争が激しくなる。",
            ("買収", "AIエージェント"),
            "funding",
        ),
    ),
    Doc(
        "uschina",
        "impress",
        ago(1),
        "米中対立、半導体サプライチェーンに影",
        "米中の対立が長引き、半導体の調達に影響が出ている。国内メーカーは調達先の分散を進める。",
        Sum(
            "米中対立、半導体サプライチェーンに影",
            "米中対立の長期化で半導体の調達に影響が出ている。",
            ("調達に遅れ", "国内メーカーが分散を進める", "在庫を積み増す動きも"),
            "国内の製造業の調達戦略に関わる。",
            ("米中", "半導体", "サプライチェーン"),
            "infra",
        ),
    ),
    Doc(
        "rice",
        "nikkei",
        ago(3),
        "AIで米の収穫量を予測、農研機構が新手法",
        "農研機構は衛星画像とAIを組み合わせ、コメの収穫量を高い精度で予測する手法を開発した。",
        Sum(
            "AIで米の収穫量を予測",
            "農研機構が衛星画像とAIでコメの収穫量を予測する手法を開発した。",
            ("衛星画像を利用", "予測精度が向上", "全国に展開予定"),
            "農業分野でのAI活用の例。",
            ("農業", "AI"),
            "japan",
        ),
    ),
    Doc(
        "open_model",
        "itmedia",
        ago(5),
        "オープンモデルの日本語性能を比較",
        "主要なopen modelを日本語ベンチマークで比較した。商用利用できるモデルも増えている。",
        Sum(
            "オープンモデルの日本語性能を比較",
            "主要なオープンモデルの日本語性能を比較した。",
            ("日本語ベンチマークで評価", "商用利用できるモデルが増加", "性能差は縮小"),
            "モデル選びの参考になる。",
            ("オープンモデル", "ベンチマーク"),
            "opensource",
        ),
    ),
    Doc(
        "open_apart",
        "arxiv",
        ago(6),
        "Scaling laws for open-domain retrieval",
        "We train a model on open data and evaluate retrieval quality. The model is open to "
        "researchers.",
        Sum(
            "オープンドメイン検索のスケーリング則",
            "公開データで学習したモデルの検索性能を評価した研究。",
            ("公開データで学習", "検索品質を評価", "研究者に公開"),
            "検索拡張生成の設計に役立つ。",
            ("検索", "スケーリング則"),
            "research",
        ),
    ),
    Doc(
        "dc_ja",
        "impress",
        ago(7),
        "国内最大級のデータセンター、北海道で着工",
        "さくらインターネットは石狩市で新しいデータセンターの建設を始めた。"
        "GPUサーバーを大量に設置する。",
        Sum(
            "国内最大級のデータセンター、北海道で着工",
            "さくらインターネットが北海道石狩市でデータセンターの建設を始めた。",
            ("石狩市に建設", "GPUサーバーを設置", "再生可能エネルギーを利用"),
            "国内の計算資源不足の解消につながる。",
            ("データセンター", "GPU"),
            "infra",
        ),
    ),
    Doc(
        "genai_en",
        "verge",
        ago(9),
        "Adobe brings generative AI to Premiere Pro",
        "The new features use Firefly models to extend video clips.",
        Sum(
            "アドビ、Premiere Proに生成AI機能を搭載",
            "アドビは動画編集ソフトに生成AIを使った新機能を追加した。",
            ("動画を延長できる", "Fireflyモデルを利用", "ベータ版で提供"),
            "映像制作の現場に影響する。",
            ("生成AI", "動画編集"),
            "products",
        ),
    ),
    Doc(  # 生成 and AI, but never 生成AI
        "gen_apart",
        "itmedia",
        ago(2),
        "画像生成の新サービス、AIで背景を自動作成",
        "写真から背景画像を生成するサービスが登場した。",
    ),
    Doc(
        "story_a",
        "reuters",
        ago(2, 5),
        "OpenAI raises $6.6 billion at $157 billion valuation",
        "OpenAI closed a funding round led by Thrive Capital.",
        Sum(
            "OpenAI、66億ドルを調達　評価額1570億ドル",
            "OpenAIは評価額1570億ドルで66億ドルの資金調達を完了した。",
            ("評価額は1570億ドル", "Thrive Capitalが主導", "マイクロソフトも参加"),
            "大型の資金調達が相次いでいる。",
            ("資金調達", "OpenAI"),
            "funding",
        ),
    ),
    Doc(
        "story_b",
        "verge",
        ago(2, 4),
        "OpenAI closes $6.6 billion funding round",
        "The round values OpenAI at $157 billion.",
        Sum(
            "OpenAIが66億ドルの資金調達",
            "OpenAIが66億ドルの資金調達ラウンドを完了した。",
            ("評価額は1570億ドル", "投資家が多数参加", "大型調達が続く"),
            "大型の資金調達が相次いでいる。",
            ("資金調達", "OpenAI"),
            "funding",
        ),
        story="story_a",
    ),
    Doc(
        "story_c",
        "itmedia",
        ago(2, 3),
        "OpenAI、66億ドルの資金調達を完了",
        "米OpenAIは66億ドルの資金調達を完了したと発表した。評価額は1570億ドル。",
        story="story_a",
    ),
    # Identical texts: only their age tells them apart. The older one gets the higher id, so
    # the id tie-break would put it first if recency were ignored.
    Doc(
        "quant_new",
        "arxiv",
        ago(1),
        "量子化で推論を高速化する新手法",
        "モデルの量子化で推論コストを半分にする。",
    ),
    Doc(
        "quant_old",
        "impress",
        ago(12),
        "量子化で推論を高速化する新手法",
        "モデルの量子化で推論コストを半分にする。",
    ),
    Doc(  # "ai" only inside words
        "ai_substring",
        "verge",
        ago(1),
        "Apple said to plan a smart home display",
        "The company maintains its focus on hardware and retail.",
    ),
    Doc(
        "old_reg",
        "nikkei",
        ago(40),
        "AI規制を巡る国際会議が閉幕",
        "各国の規制当局が集まり、AIの安全性について議論した。",
    ),
    Doc(  # 03:00 on 2026-11-20 in Tokyo: inside since:2026-11-20
        "edge_in",
        "impress",
        datetime(2026, 11, 19, 18, 0, tzinfo=UTC),
        "九州で半導体工場が稼働",
        "熊本県の新工場で半導体の量産が始まった。",
        Sum(
            "九州で半導体工場が稼働",
            "熊本県の新工場で半導体の量産が始まった。",
            ("熊本県に新工場", "量産を開始", "雇用も拡大"),
            "国内の供給網の強化につながる。",
            ("半導体", "熊本"),
            "infra",
        ),
    ),
    Doc(  # 23:00 on 2026-11-19 in Tokyo: outside since:2026-11-20
        "edge_out",
        "impress",
        datetime(2026, 11, 19, 14, 0, tzinfo=UTC),
        "北海道で半導体工場の建設が進む",
        "千歳市の新工場は2027年の量産開始を目指す。",
    ),
    Doc(  # the matched word far into a long body: the snippet must move to it
        "long_body",
        "nikkei",
        ago(5),
        "研究機関が次世代計算機の開発計画を発表",
        "画像生成の研究も進む。"
        + FILLER
        + "量子コンピュータと生成AIを組み合わせた新しい手法も検討する。"
        + FILLER,
    ),
    Doc(  # title_ja ends with "AI" and the keywords start with 規制: not the phrase AI規制
        "eu_code",
        "reuters",
        ago(4),
        "EU publishes code of practice for general-purpose AI",
        "The European Commission published a voluntary code for providers of general-purpose AI "
        "models, covering transparency and copyright.",
        Sum(
            "EUが行動規範を公表、対象は汎用AI",
            "欧州委員会は汎用AIモデルの提供者向けに透明性と著作権の行動規範を公表した。",
            ("自主的な規範", "透明性と著作権が柱", "大手各社が署名を検討"),
            "EU域内でAIを提供する企業の対応が必要になる。",
            ("規制", "EU", "汎用AI"),
            "policy",
        ),
    ),
]
LATE = Doc(  # polled after the corpus, summarised later still
    "late",
    "verge",
    ago(0, 2),
    "Startup unveils a robot arm for warehouses",
    "The arm sorts parcels without a camera.",
    Sum(
        "新興企業が倉庫向けロボットアームを発表",
        "カメラを使わずに物流倉庫の荷物を仕分けるロボットアームが登場した。",
        ("カメラ不要", "物流倉庫向け", "来春に出荷"),
        "物流の自動化が進む。",
        ("ロボット", "物流"),
        "products",
    ),
)
BY_KEY = {d.key: d for d in [*DOCS, LATE]}
KEY_OF_URL = {d.url: d.key for d in [*DOCS, LATE]}


def _build(session: Session, docs: list[Doc]) -> dict[str, int]:
    wanted = {d.source for d in docs}
    add_missing_sources(session=session, specs=[SOURCES[k] for k in SOURCES if k in wanted])
    source_id = {s.url: s.id or 0 for s in list_sources(session=session)}
    ids: dict[str, int] = {}
    for doc in docs:
        article = NewArticle(
            url=doc.url,
            guid=doc.key,
            title=doc.title,
            language=doc.language,
            published_at=doc.published,
            body_text=doc.body,
            content_hash=f"hash-{doc.key}",
        )
        [(_, ids[doc.key])] = insert_new_articles(
            session=session,
            source_id=source_id[SOURCES[doc.source].url],
            articles=[article],
            first_seen_at=doc.published,
        )
    set_story_ids(session=session, story_of={ids[d.key]: ids[d.story or d.key] for d in docs})
    for doc in docs:
        if doc.summary is not None:
            save_summary(session=session, summary=summary_of(doc, ids[doc.key]))
    # What the summarize job would do for the rest (it always stores at least an extractive
    # summary); here they are indexed from title and body alone.
    index_articles(session=session, article_ids=[ids[d.key] for d in docs if d.summary is None])
    return ids


def summary_of(doc: Doc, article_id: int) -> Summary:
    s = doc.summary
    assert s is not None
    return Summary(
        article_id=article_id,
        title_ja=s.title_ja,
        overview=s.overview,
        points=list(s.points),
        why_important=s.why,
        keywords=list(s.keywords),
        category=s.category,
        importance=2,
        method="llm",
        model="m",
        prompt_version="p",
        content_hash=f"hash-{doc.key}",
    )


async def build_corpus(app: App, docs: list[Doc] = DOCS) -> dict[str, int]:
    return await app.db.run(_build, docs=docs)


# ── the brute-force oracle ───────────────────────────────────────────────────────────────────


def nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value).lower()


def containing(word: str, docs: list[Doc] = DOCS) -> set[str]:
    """Docs whose text contains `word`: a substring for Japanese, a whole word for Latin."""
    word = nfkc(word)
    if word.isascii():
        pattern = re.compile(rf"(?<![0-9a-z]){re.escape(word)}(?![0-9a-z])")
        return {d.key for d in docs if any(pattern.search(nfkc(t)) for t in d.texts())}
    return {d.key for d in docs if any(word in nfkc(t) for t in d.texts())}


# ── helpers ──────────────────────────────────────────────────────────────────────────────────


async def find(app: App, query: str, *, limit: int = 100, **filters: Any) -> SearchPage:
    wanted = SearchQuery(text=parse_query_text(query), limit=limit, **filters)
    return await app.db.run(search, query=wanted, now=NOW)


def keys(page: SearchPage) -> list[str]:
    return [KEY_OF_URL[h.url] for h in page.hits]


def story(key: str) -> str:
    """A story's articles all answer for it under the key of its first article."""
    return BY_KEY[key].story or key


async def found(app: App, query: str, **filters: Any) -> set[str]:
    """The stories found, each named by its first article; checks they are listed once."""
    page = await find(app, query, **filters)
    result = [story(k) for k in keys(page)]
    assert len(result) == len(set(result)) == page.total, query
    return set(result)


def open_settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    database = {}
    if backend == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path, **database)


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    """Every database test runs on both databases."""
    async with open_app(open_settings(tmp_path, request.param, request)) as app:
        yield app


@pytest.fixture
async def corpus(app: App) -> dict[str, int]:
    return await build_corpus(app)


# ── matching ─────────────────────────────────────────────────────────────────────────────────

# Each query with every article it must find (stories collapsed: story_a stands for its
# story). Word queries are checked against the brute-force scan as well.
WORD_CASES = {
    "規制": {"reg_title", "reg_body", "export", "old_reg", "eu_code"},
    "買収": {"acq_ja", "acq_en"},
    "米中": {"export", "uschina"},
    "米": {"export", "sb_earnings", "acq_en", "uschina", "rice", "story_a"},  # story_a: its story_c
    "半導体": {"export", "uschina", "edge_in", "edge_out"},
    "AI": {
        *("reg_title", "reg_body", "export", "nv_earnings", "sb_earnings", "acq_ja"),
        *("acq_en", "rice", "genai_en", "gen_apart", "old_reg", "eu_code", "long_body"),
    },
    "nvidia": {"export", "nv_earnings", "nv_gpu"},
    "エヌビディア": {"nv_earnings", "nv_gpu"},
    "生成AI": {"reg_title", "nv_earnings", "genai_en", "long_body"},
    "データセンター": {"export", "nv_earnings", "sb_earnings", "dc_ja"},
    "量子コンピュータ": {"long_body"},
}
# Same answers whatever the case or width of the input.
EQUIVALENT = {
    "ai": "AI",
    "Ai": "AI",
    "ＡＩ": "AI",
    "ＮＶＩＤＩＡ": "nvidia",
    "NVIDIA": "nvidia",
    "Nvidia": "nvidia",
    "生成ＡＩ": "生成AI",
    "生成ai": "生成AI",
    "ﾃﾞｰﾀｾﾝﾀｰ": "データセンター",
}
QUERY_CASES = {
    "NVIDIA 決算": {"nv_earnings"},
    "決算": {"nv_earnings", "sb_earnings"},
    "open model": {"open_model", "open_apart"},
    '"open model"': {"open_model"},
    "“open model”": {"open_model"},
    "規制 -EU": {"reg_title", "export", "old_reg"},
    "規制 －ＥＵ": {"reg_title", "export", "old_reg"},
    "AI -生成AI": WORD_CASES["AI"] - WORD_CASES["生成AI"],
    "米 -米中": {"sb_earnings", "acq_en", "rice", "story_a"},
    "AI規制": {"reg_title", "old_reg"},  # one word: the phrase, not AI and 規制 anywhere
    "AI 規制": {"reg_title", "reg_body", "export", "old_reg", "eu_code"},
    "資金調達": {"story_a"},
    "OpenAI": {"story_a"},
    "Blackwell": {"nv_gpu"},
    "量子化": {"quant_new", "quant_old"},
    "商務省 中国": {"export"},  # an English article through its Japanese summary
    "輸出規制": {"export"},
    "対話AI 楽天": {"acq_ja"},
    "ロボット": set(),
    "gpt": set(),
}


def test_the_corpus_has_the_answers_written_down() -> None:
    for word, expected in WORD_CASES.items():
        assert {story(k) for k in containing(word)} == expected, word
    assert containing("ai") >= {"gen_apart"} and "ai_substring" not in containing("ai")
    assert "gen_apart" not in containing("生成ai")
    assert all(containing(query) == containing(same) for query, same in EQUIVALENT.items())


async def test_words_find_every_article_containing_them_and_nothing_else(
    app: App, corpus: dict[str, int]
) -> None:
    for word, expected in WORD_CASES.items():
        assert await found(app, word) == expected, word


async def test_case_and_width_do_not_matter(app: App, corpus: dict[str, int]) -> None:
    for query, same in EQUIVALENT.items():
        assert await found(app, query) == WORD_CASES[same], query


async def test_multi_term_phrase_and_exclusion(app: App, corpus: dict[str, int]) -> None:
    for query, expected in QUERY_CASES.items():
        assert await found(app, query) == expected, query


async def test_japanese_words_find_english_articles_through_their_summary(
    app: App, corpus: dict[str, int]
) -> None:
    english = {d.key for d in DOCS if d.language == "en"}
    # title_ja, overview and keywords are the only places these words occur.
    assert await found(app, "輸出規制") & english == {"export"}
    assert await found(app, "セールスフォース") == {"acq_en"}  # title_ja and overview
    assert await found(app, "動画編集") == {"genai_en"}  # overview and keywords
    assert "nv_earnings" in await found(app, "エヌビディア")  # overview only
    assert "eu_code" in await found(app, "規制")  # keywords only


# ── filters and pages ────────────────────────────────────────────────────────────────────────


async def test_category_source_and_since_filters(app: App, corpus: dict[str, int]) -> None:
    assert await found(app, "AI", category="funding") == {"acq_ja", "acq_en"}
    # old_reg and sb_earnings have no summary, hence no category.
    assert await found(app, "AI", category="policy") == {
        "reg_title",
        "reg_body",
        "export",
        "eu_code",
    }
    assert await found(app, "AI", source="verge") == {"acq_en", "genai_en"}
    assert await found(app, "AI", source="VERGE") == {"acq_en", "genai_en"}
    assert await found(app, "AI", source="_") == set()  # not a LIKE wildcard
    assert await found(app, "AI", source="%") == set()
    assert await found(app, "AI", source="日経") == {
        "reg_body",
        "sb_earnings",
        "acq_ja",
        "rice",
        "old_reg",
        "long_body",
    }
    assert await found(app, "規制", since=NOW - timedelta(days=7)) == {
        "reg_title",
        "reg_body",
        "export",
        "eu_code",
    }
    # Local midnight in Tokyo is 15:00 UTC the day before: edge_in (03:00 JST) is inside.
    since = datetime(2026, 11, 20, tzinfo=TOKYO)
    assert await found(app, "半導体", since=since) == {"export", "uschina", "edge_in"}
    assert await found(app, "半導体", since=since, category="infra") == {"uschina", "edge_in"}


async def test_filters_typed_in_the_query_reach_the_database(
    app: App, corpus: dict[str, int]
) -> None:
    request = parse_search_text(
        "半導体 since:2026-11-20 source:impress", taxonomy=app.taxonomy, now=NOW, tz=TOKYO
    )
    page = await find(app, request.text, source=request.source, since=request.since)
    assert set(keys(page)) == {"uschina", "edge_in"}
    request = parse_search_text("規制 since:7d", taxonomy=app.taxonomy, now=NOW, tz=TOKYO)
    assert await found(app, request.text, since=request.since) == {
        "reg_title",
        "reg_body",
        "export",
        "eu_code",
    }


async def test_pages_do_not_overlap_and_agree_on_the_total(
    app: App, corpus: dict[str, int]
) -> None:
    everything = await find(app, "AI")
    assert everything.total == len(WORD_CASES["AI"]) == 13
    pages = [await find(app, "AI", limit=5, offset=offset) for offset in (0, 5, 10, 15)]
    assert [len(p.hits) for p in pages] == [5, 5, 3, 0]
    assert {p.total for p in pages} == {13}
    seen = [k for p in pages for k in keys(p)]
    assert seen == keys(everything)  # the same order, cut into pages


# ── ranking, stories, snippets ───────────────────────────────────────────────────────────────


def rank(page: SearchPage, key: str) -> int:
    return keys(page).index(key)


async def test_title_matches_rank_above_body_matches_and_recent_above_old(
    app: App, corpus: dict[str, int]
) -> None:
    # The body-only match is the more recent one each time: the title has to win on its own.
    regulation = await find(app, "規制")
    assert rank(regulation, "reg_title") < rank(regulation, "reg_body")
    datacenter = await find(app, "データセンター")
    assert rank(datacenter, "dc_ja") < rank(datacenter, "sb_earnings")
    generative = await find(app, "生成AI")  # in two titles; in nv_earnings' points only
    assert rank(generative, "reg_title") < rank(generative, "nv_earnings")
    assert rank(generative, "genai_en") < rank(generative, "nv_earnings")
    # Equal texts: the more recent first, although the older one has the higher id.
    assert keys(await find(app, "量子化")) == ["quant_new", "quant_old"]
    assert keys(await find(app, "推論 高速化")) == ["quant_new", "quant_old"]
    scores = [h.score for h in (await find(app, "量子化")).hits]
    assert scores[0] > scores[1] > 0


async def test_one_hit_per_story_with_the_other_sources_counted(
    app: App, corpus: dict[str, int]
) -> None:
    for query in ("OpenAI", "資金調達", "66億ドル"):
        page = await find(app, query)
        assert page.total == len(page.hits) == 1, query
        [hit] = page.hits
        assert KEY_OF_URL[hit.url] in {"story_a", "story_b", "story_c"}
        assert hit.other_sources == 2, query
    # A story matched through one of its articles only is shown by that article.
    [hit] = (await find(app, "米 資金調達")).hits
    assert KEY_OF_URL[hit.url] == "story_c"
    # Articles outside any shared story never report other sources.
    assert all(h.other_sources == 0 for h in (await find(app, "AI")).hits)


def nfkc_snippet(value: str) -> str:
    return nfkc(value).replace(" ", "")


async def test_snippets_show_the_matched_word(app: App, corpus: dict[str, int]) -> None:
    for query, word in (
        ("規制 -EU", "規制"),
        ("ＮＶＩＤＩＡ", "nvidia"),
        ("生成AI", "生成ai"),
        ("Blackwell", "blackwell"),
        ("米中", "米中"),
        ("決算", "決算"),
    ):
        for hit in (await find(app, query)).hits:
            assert word in nfkc_snippet(hit.snippet), (query, hit.url, hit.snippet)
    [hit] = (await find(app, "量子コンピュータ")).hits
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert "量子コンピュータ" in hit.snippet and len(hit.snippet) <= 122


def test_a_snippet_is_cut_around_its_word_after_characters_that_normalise_longer() -> None:
    """Matching runs on normalised text, cutting on the original: "…" (three characters once
    normalised) and "ﬁ" (two) before the word shift every later offset."""
    text = "前置き… ﬁnal ＡＩ、" * 30 + "ここで量子コンピュータの話。" + "後書き。" * 30
    [term] = parse_query_text("量子コンピュータ").required
    cut = snippet([text], (term,))
    assert "量子コンピュータ" in cut and cut.startswith("…") and cut.endswith("…")
    plain = "前置きです。" * 40 + "ここで量子コンピュータの話。" + "後書き。" * 30
    assert "量子コンピュータ" in snippet([plain], (term,))


# ── both backends agree ──────────────────────────────────────────────────────────────────────

SAME_ON_BOTH = [
    *WORD_CASES,
    "ＮＶＩＤＩＡ",
    "NVIDIA 決算",
    "open model",
    '"open model"',
    "規制 -EU",
    "AI規制",
    "AI -生成AI",
    "資金調達",
    "量子化",
    "Blackwell",
    "輸出規制",
    "米 -米中",
]
CLEAR_WINNER = {
    "量子化": "quant_new",
    "NVIDIA 決算": "nv_earnings",
    "Blackwell": "nv_gpu",
    "米中": "uschina",
    "買収": "acq_ja",
    "セールスフォース": "acq_en",
    "量子コンピュータ": "long_body",
}


async def test_sqlite_and_postgresql_return_the_same_articles(
    tmp_path: Path, postgres_url: str
) -> None:
    results: dict[str, dict[str, tuple[set[str], int]]] = {}
    top: dict[str, dict[str, str]] = {}
    for backend, url in (("sqlite", None), ("postgresql", postgres_url)):
        settings = make_settings(tmp_path, **({"DATABASE_URL": url} if url else {}))
        async with open_app(settings) as app:
            assert app.db.backend == backend
            await build_corpus(app)
            results[backend] = {}
            for query in SAME_ON_BOTH:
                page = await find(app, query)
                results[backend][query] = ({story(k) for k in keys(page)}, page.total)
            top[backend] = {q: keys(await find(app, q, limit=1))[0] for q in CLEAR_WINNER}
    differing = {
        q: (results["sqlite"][q], results["postgresql"][q])
        for q in SAME_ON_BOTH
        if results["sqlite"][q] != results["postgresql"][q]
    }
    assert differing == {}
    assert top["sqlite"] == top["postgresql"] == CLEAR_WINNER


# ── keeping the index up to date ─────────────────────────────────────────────────────────────


def index_size(app: App) -> int:
    table = "article_search" if app.db.backend == "postgresql" else "article_fts"
    with Session(app.db.engine) as session:
        return int(session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


async def test_index_follows_new_summaries_removed_sources_and_reindex(app: App) -> None:
    await build_corpus(app)
    # Polled but not summarised yet (the summarize job follows every poll).
    [(_, late_id)] = await app.db.run(
        insert_new_articles,
        source_id=next(s.id for s in await app.db.run(list_sources) if s.name == "The Verge AI"),
        articles=[NewArticle(LATE.url, LATE.key, LATE.title, "en", LATE.published, LATE.body, "h")],
        first_seen_at=LATE.published,
    )
    assert await found(app, "物流倉庫") == set()

    await app.db.run(save_summary, summary=summary_of(LATE, late_id))

    assert await found(app, "物流倉庫") == {"late"}
    assert await found(app, "ロボットアーム") == {"late"}
    assert await found(app, "robot arm") == {"late"}
    assert index_size(app) == len(DOCS) + 1
    before = {q: await found(app, q) for q in ("AI", "規制", "生成AI", "米")}

    assert await app.db.run(remove_source_by, url_or_id=SOURCES["verge"].url)

    verge = {d.key for d in [*DOCS, LATE] if d.source == "verge"}
    assert await found(app, "物流倉庫") == set()
    assert await found(app, "AI") == before["AI"] - verge
    assert (
        await found(app, "生成AI")
        == before["生成AI"] - verge
        == {
            "reg_title",
            "nv_earnings",
            "long_body",
        }
    )
    assert await found(app, "買収") == {"acq_ja"}
    # story_b (verge) is gone: the story now has two sources.
    assert (await find(app, "OpenAI")).hits[0].other_sources == 1
    assert index_size(app) == len(DOCS) + 1 - len(verge)  # no rows left behind

    after_removal = {q: await found(app, q) for q in before}
    await app.db.run(clear_index)
    assert index_size(app) == 0
    assert await found(app, "AI") == set()
    assert await reindex(app) == len(DOCS) + 1 - len(verge)
    assert {q: await found(app, q) for q in before} == after_removal
    assert index_size(app) == len(DOCS) + 1 - len(verge)


# ── handlers ─────────────────────────────────────────────────────────────────────────────────


def test_parse_search_text_extracts_filters(settings: Settings) -> None:
    taxonomy = Taxonomy.load(settings.categories_file)
    request = parse_search_text(
        '半導体 category:infra source:"日経 クロステック" since:7d 工場',
        taxonomy=taxonomy,
        now=NOW,
        tz=TOKYO,
    )
    assert request == SearchRequest(
        text="半導体 工場",
        category="infra",
        source="日経 クロステック",
        since=NOW - timedelta(days=7),
    )
    # Aliases and labels resolve to the slug; dates are local midnight; units in Japanese.
    assert parse_search_text(
        "買収 cat:資金調達", taxonomy=taxonomy, now=NOW, tz=TOKYO
    ).category == ("funding")
    dated = parse_search_text("AI since:2026-11-20", taxonomy=taxonomy, now=NOW, tz=TOKYO)
    assert dated.since == datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
    assert parse_search_text("AI since:24h", taxonomy=taxonomy, now=NOW, tz=TOKYO).since == (
        NOW - timedelta(hours=24)
    )
    assert parse_search_text("AI since:2週", taxonomy=taxonomy, now=NOW, tz=TOKYO).since == (
        NOW - timedelta(weeks=2)
    )
    # A word that only looks like a filter is part of the query.
    assert parse_search_text("IPO前のsince:", taxonomy=taxonomy, now=NOW, tz=TOKYO).text == (
        "IPO前のsince:"
    )


def test_parse_search_text_rejects_bad_filters_clearly(settings: Settings) -> None:
    taxonomy = Taxonomy.load(settings.categories_file)
    with pytest.raises(FilterError) as unknown:
        parse_search_text("AI category:gossip", taxonomy=taxonomy, now=NOW, tz=TOKYO)
    assert "gossip" in str(unknown.value) and "infra" in str(unknown.value)
    for bad in ("yesterday", "2026-13-01", "7x", "9999999d"):
        with pytest.raises(FilterError) as wrong:
            parse_search_text(f"AI since:{bad}", taxonomy=taxonomy, now=NOW, tz=TOKYO)
        assert f"since:{bad}" in str(wrong.value) and "7d" in str(wrong.value)


async def test_handle_search_without_words_explains_usage_and_pages_results(
    tmp_path: Path,
) -> None:
    async with open_app(make_settings(tmp_path), clock=lambda: NOW) as app:
        await build_corpus(app)
        ctx = handler_context(app)
        for empty in ("", "   ", "-規制", 'category:infra ""'):
            request = parse_search_text(empty, taxonomy=app.taxonomy, now=ctx.now, tz=ctx.tz)
            reply = await handle_search(ctx, request)
            assert reply.error and not reply.articles, empty
            assert USAGE in [p.text for ln in reply.lines for p in ln.parts if hasattr(p, "text")]

        second = await handle_search(ctx, SearchRequest(text="規制", limit=2, page=2))
        assert not second.error and second.shareable
        assert "3〜4件目 / 全5件" in second.title
        assert second.paging is not None and (second.paging.page, second.paging.pages) == (2, 3)
        assert [a.number for a in second.articles] == [3, 4]
        first = await handle_search(ctx, SearchRequest(text="規制", limit=2, page=1))
        every = await handle_search(ctx, SearchRequest(text="規制", limit=5))
        assert [a.url for a in first.articles + second.articles] == [
            a.url for a in every.articles[:4]
        ]
        english = next(a for a in every.articles if a.url == BY_KEY["export"].url)
        assert english.title == "米国、中国向けAIチップの輸出規制を強化"  # the Japanese title
        assert english.snippet and english.source == "Reuters Technology"

        nothing = await handle_search(ctx, SearchRequest(text="ロボット"))
        assert not nothing.error and not nothing.articles and "ロボット" in nothing.title


# ── the command line ─────────────────────────────────────────────────────────────────────────


async def test_cli_search_json_returns_every_article_containing_the_word(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'cli.sqlite3'}"  # what tests.test_cli.ainews uses
    async with open_app(make_settings(tmp_path, DATABASE_URL=database)) as app:
        await build_corpus(app)

    for word in ("規制", "半導体"):
        result = await ainews(tmp_path, "search", word, "--json")
        assert result.code == 0, result.err
        hits = json.loads(result.out)
        expected = {BY_KEY[k].url for k in containing(word)}
        assert 0 < len(expected) <= 10  # all of them fit the default --limit
        assert {h["url"] for h in hits} == expected, word
        by_url = {d.url: d for d in DOCS}
        for hit in hits:
            assert {"url", "title", "source", "published", "category", "score", "snippet"} <= set(
                hit
            )
            doc = by_url[hit["url"]]
            assert hit["title"] == doc.title
            assert hit["source"] == SOURCES[doc.source].name
            assert datetime.fromisoformat(hit["published"]) == doc.published
            assert hit["category"] == (doc.summary.category if doc.summary else None)
            assert isinstance(hit["score"], float) and hit["score"] > 0
            assert hit["snippet"]
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True)
