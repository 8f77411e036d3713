"""Search benchmark: the real full-text search against a naive LIKE scan, on 100k articles.

One run (`uv run python bench/search.py`), per backend (SQLite, PostgreSQL or both):

1. generates N realistic, seeded articles (about 60 % Japanese, 40 % English, 1–3 KB bodies
   built from AI-news vocabularies with Zipf-like frequencies and a long tail of rare names),
   each with a Japanese summary, spread over 90 days and 10 sources, ~10 % of them
   near-duplicates of an earlier story (same `story_id`, another source);
2. loads them into a fresh database after `upgrade_to_head` with bulk inserts (not timed as
   index build), then rebuilds the search index exactly as `ainews reindex` does (timed) and
   prints the database size;
3. runs a fixed, seeded set of queries (1 and 2 characters, longer Japanese words, katakana,
   English words, two-term queries, rare names) through `storage.search.query.search` with
   limit 10 — one untimed warm-up pass, one timed pass — and measures where the time goes
   (the candidate SQL with and without `body_text`, ranking only, match only, Python);
4. runs the same queries as a naive `LIKE` / `ILIKE` scan over title, body, title_ja, overview
   and keywords;
5. compares the results: recall of the scan's matches in the indexed top 10 (near-duplicate
   stories collapse to one hit, so a match counts as found when its story is shown), the same
   against a larger limit, and full-set agreement; lists the queries with misses and why;
6. prints a table per backend, both side by side, and PASS/MISS against the targets.

It is a measurement, not a test: a missed target prints MISS and still exits 0. It exits 1 only
when the run itself is invalid (wrong row counts, a failed query, an unreachable database).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, event, insert, text
from sqlmodel import Session

import storage.search.query as query_module
from storage.articles import entry_key
from storage.db import Database
from storage.migrate import upgrade_to_head
from storage.models import Article, Source, Summary
from storage.search.index import all_article_ids, clear_index, index_articles
from storage.search.query import (
    CANDIDATES,
    FTS_WEIGHTS,
    PG_WEIGHTS,
    SearchPage,
    SearchQuery,
    _collapse,
    _fts_term,
    _hit,
    _pg_tsquery,
    _postgres_sql,
    _rank,
    _sqlite_sql,
    _texts,
    _token_shares,
    row_dicts,
    search,
)
from storage.search.terms import _CJK, parse_query_text

T = TypeVar("T")
WINDOW: int | None = getattr(query_module, "WINDOW", None)  # newest matches that get ranked

TARGET_P95_MS = {"sqlite": 30.0, "postgresql": 60.0}  # indexed search p95, per backend
TARGET_SPEEDUP = 50.0  # naive scan / indexed search (p50 and total)
TARGET_RECALL = 1.0  # scan matches found in the top 10 when the scan has ≤ 10 matches
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REINDEX_BATCH = 500  # what bot.app.reindex uses
BIG_LIMIT = 1000

# ── vocabularies ─────────────────────────────────────────────────────────────────────────────
# Lists are in descending frequency: samplers draw them with Zipf-like weights, so the first
# entries are common and the last ones rare.

# (English name, Japanese spellings — the first is the canonical keyword)
_COMPANIES: list[tuple[str, tuple[str, ...]]] = [
    ("OpenAI", ("OpenAI", "米OpenAI", "オープンAI")),
    ("Google", ("グーグル", "米グーグル", "Google")),
    ("Microsoft", ("マイクロソフト", "米マイクロソフト", "Microsoft")),
    ("NVIDIA", ("エヌビディア", "NVIDIA", "米エヌビディア", "ＮＶＩＤＩＡ")),
    ("Meta", ("メタ", "米メタ", "Meta")),
    ("Anthropic", ("アンソロピック", "Anthropic", "米Anthropic")),
    ("SoftBank", ("ソフトバンクグループ", "ソフトバンク")),
    ("Amazon", ("アマゾン", "米アマゾン・ドット・コム", "AWS")),
    ("Apple", ("アップル", "米アップル")),
    ("TSMC", ("TSMC", "台湾積体電路製造")),
    ("Intel", ("インテル", "米インテル")),
    ("AMD", ("AMD", "米AMD")),
    ("Fujitsu", ("富士通",)),
    ("NEC", ("NEC",)),
    ("Hitachi", ("日立製作所", "日立")),
    ("Sony", ("ソニーグループ", "ソニー")),
    ("Toyota", ("トヨタ自動車", "トヨタ")),
    ("Rakuten", ("楽天グループ", "楽天")),
    ("LY Corporation", ("LINEヤフー",)),
    ("Sakana AI", ("サカナAI", "Sakana AI")),
    ("Preferred Networks", ("プリファードネットワークス", "PFN")),
    ("Rapidus", ("ラピダス", "Rapidus")),
    ("Kioxia", ("キオクシア",)),
    ("Samsung", ("サムスン電子", "韓国サムスン電子")),
    ("Huawei", ("ファーウェイ", "中国華為技術")),
    ("Alibaba", ("アリババ", "中国アリババ集団")),
    ("Baidu", ("バイドゥ", "中国百度")),
    ("Tencent", ("テンセント", "中国騰訊控股")),
    ("ByteDance", ("バイトダンス", "中国字節跳動")),
    ("DeepSeek", ("ディープシーク", "DeepSeek")),
    ("Mistral AI", ("ミストラルAI", "仏ミストラル")),
    ("xAI", ("xAI", "米xAI")),
    ("IBM", ("IBM", "日本IBM")),
    ("Oracle", ("オラクル", "米オラクル")),
    ("Salesforce", ("セールスフォース",)),
    ("NTT", ("NTT", "NTTデータ")),
    ("KDDI", ("KDDI",)),
    ("Panasonic", ("パナソニック",)),
    ("Tokyo Electron", ("東京エレクトロン",)),
    ("Advantest", ("アドバンテスト",)),
    ("Renesas", ("ルネサスエレクトロニクス",)),
    ("SK hynix", ("SKハイニックス",)),
    ("Arm", ("英アーム", "Arm")),
    ("Qualcomm", ("クアルコム",)),
    ("ELYZA", ("ELYZA",)),
    ("Stockmark", ("ストックマーク",)),
    ("Hugging Face", ("Hugging Face", "ハギングフェイス")),
    ("Perplexity", ("パープレキシティ", "Perplexity")),
    ("Databricks", ("データブリックス",)),
    ("Cohere", ("コーヒア", "Cohere")),
]  # fmt: skip

_PRODUCTS: list[str] = [
    "ChatGPT", "Gemini", "Claude", "Copilot", "GPT-4o", "Llama", "GPT-5", "H100", "Blackwell",
    "Grok", "Qwen", "DeepSeek-R1", "B200", "TPU", "Sora", "NotebookLM", "Gemma", "o3", "Veo",
    "Trainium", "Cursor", "Phi-4", "Mixtral", "Stable Diffusion", "Devin", "Gaudi", "tsuzumi",
    "Codex", "Midjourney", "Operator",
]  # fmt: skip

# (English, Japanese, category slug)
_TOPICS: list[tuple[str, str, str]] = [
    ("generative AI", "生成AI", "products"),
    ("AI agents", "AIエージェント", "agents"),
    ("semiconductors", "半導体", "infra"),
    ("data centers", "データセンター", "infra"),
    ("large language models", "大規模言語モデル", "research"),
    ("regulation", "規制", "policy"),
    ("acquisitions", "買収", "funding"),
    ("earnings", "決算", "products"),
    ("US-China tensions", "米中対立", "policy"),
    ("export controls", "輸出規制", "policy"),
    ("copyright", "著作権", "policy"),
    ("GPUs", "GPU", "infra"),
    ("cloud computing", "クラウド", "infra"),
    ("inference", "推論", "research"),
    ("open-source models", "オープンソースモデル", "opensource"),
    ("cybersecurity", "サイバーセキュリティ", "security"),
    ("funding rounds", "資金調達", "funding"),
    ("power consumption", "電力消費", "infra"),
    ("personal data", "個人情報", "policy"),
    ("robotics", "ロボット", "research"),
    ("autonomous driving", "自動運転", "products"),
    ("healthcare", "医療", "society"),
    ("education", "教育", "society"),
    ("employment", "雇用", "society"),
    ("deepfakes", "ディープフェイク", "security"),
    ("disinformation", "偽情報", "society"),
    ("vulnerabilities", "脆弱性", "security"),
    ("prompt injection", "プロンプトインジェクション", "security"),
    ("quantum computing", "量子コンピューター", "research"),
    ("startups", "スタートアップ", "funding"),
    ("IPOs", "新規株式公開", "funding"),
    ("partnerships", "業務提携", "products"),
    ("lawsuits", "訴訟", "policy"),
    ("antitrust", "独占禁止法", "policy"),
    ("the EU AI Act", "欧州AI法", "policy"),
    ("AI safety", "AIの安全性", "policy"),
    ("multimodal models", "マルチモーダルモデル", "research"),
    ("speech recognition", "音声認識", "research"),
    ("image generation", "画像生成", "products"),
    ("video generation", "動画生成", "products"),
    ("search", "検索", "products"),
    ("advertising", "広告", "products"),
    ("smartphones", "スマートフォン", "products"),
    ("edge AI", "エッジAI", "infra"),
    ("Japanese language models", "日本語LLM", "japan"),
    ("government AI strategy", "AI戦略", "japan"),
    ("AI talent", "AI人材", "japan"),
    ("subsidies", "補助金", "japan"),
    ("manufacturing", "製造業", "japan"),
    ("finance", "金融", "society"),
    ("call centers", "コールセンター", "society"),
    ("drug discovery", "創薬", "research"),
    ("climate", "気候変動", "society"),
    ("elections", "選挙", "society"),
    ("children's safety", "子どもの安全", "society"),
    ("privacy", "プライバシー", "security"),
    ("hallucinations", "ハルシネーション", "research"),
    ("fine-tuning", "ファインチューニング", "research"),
    ("distillation", "蒸留", "research"),
    ("quantization", "量子化", "research"),
    ("retrieval-augmented generation", "検索拡張生成", "research"),
    ("benchmarks", "ベンチマーク", "research"),
    ("open weights", "オープンウェイト", "opensource"),
    ("model licensing", "ライセンス", "opensource"),
    ("liquid cooling", "液冷", "infra"),
    ("nuclear power", "原子力発電", "infra"),
    ("HBM memory", "広帯域メモリー", "infra"),
    ("chiplets", "チップレット", "infra"),
    ("sovereign AI", "ソブリンAI", "japan"),
    ("defense", "防衛", "policy"),
    ("logistics", "物流", "society"),
    ("agriculture", "農業", "society"),
    ("photonics", "光電融合", "infra"),
    ("neuromorphic chips", "ニューロモーフィック", "research"),
    ("homomorphic encryption", "準同型暗号", "security"),
]  # fmt: skip

_GOVS: list[tuple[str, str]] = [
    ("the Japanese government", "日本政府"),
    ("the Ministry of Economy, Trade and Industry", "経済産業省"),
    ("the US Commerce Department", "米商務省"),
    ("the European Commission", "欧州委員会"),
    ("the White House", "ホワイトハウス"),
    ("China's government", "中国政府"),
    ("Japan's Digital Agency", "デジタル庁"),
    ("the Ministry of Internal Affairs", "総務省"),
    ("the EU", "欧州連合"),
    ("the Cabinet Office", "内閣府"),
    ("the UK government", "英国政府"),
    ("Japan's Fair Trade Commission", "公正取引委員会"),
    ("the Agency for Cultural Affairs", "文化庁"),
    ("the Personal Information Protection Commission", "個人情報保護委員会"),
    ("the G7", "G7"),
    ("the FTC", "米連邦取引委員会"),
    ("the United Nations", "国連"),
    ("the OECD", "OECD"),
    ("the Tokyo Metropolitan Government", "東京都"),
    ("Taiwan's government", "台湾当局"),
]  # fmt: skip

_PLACES: list[tuple[str, str]] = [
    ("the US", "米国"), ("China", "中国"), ("Japan", "日本"), ("Europe", "欧州"),
    ("Taiwan", "台湾"), ("Tokyo", "東京"), ("South Korea", "韓国"), ("India", "インド"),
    ("the UK", "英国"), ("Silicon Valley", "シリコンバレー"), ("Osaka", "大阪"),
    ("France", "フランス"), ("Germany", "ドイツ"), ("Singapore", "シンガポール"),
    ("the Middle East", "中東"), ("Hokkaido", "北海道"), ("Kumamoto", "熊本"),
    ("Fukuoka", "福岡"), ("Texas", "テキサス州"), ("Chiba", "千葉県"), ("Malaysia", "マレーシア"),
    ("Vietnam", "ベトナム"),
]  # fmt: skip

_PEOPLE: list[tuple[str, str]] = [
    ("Sam Altman", "アルトマンCEO"), ("Jensen Huang", "ジェンスン・フアンCEO"),
    ("Satya Nadella", "ナデラCEO"), ("Sundar Pichai", "ピチャイCEO"),
    ("Mark Zuckerberg", "ザッカーバーグCEO"), ("Dario Amodei", "アモデイCEO"),
    ("Masayoshi Son", "孫正義会長"), ("Elon Musk", "マスク氏"), ("Demis Hassabis", "ハサビスCEO"),
    ("Yann LeCun", "ルカン氏"), ("Lisa Su", "スーCEO"), ("Arthur Mensch", "メンシュCEO"),
]  # fmt: skip

_UNIVERSITIES: list[tuple[str, str]] = [
    ("the University of Tokyo", "東京大学"), ("Kyoto University", "京都大学"),
    ("RIKEN", "理化学研究所"), ("AIST", "産業技術総合研究所"),
    ("Stanford University", "スタンフォード大学"),
    ("Tohoku University", "東北大学"), ("Osaka University", "大阪大学"),
    ("MIT", "マサチューセッツ工科大学"),
    ("the National Institute of Informatics", "国立情報学研究所"),
    ("Keio University", "慶應義塾大学"),
    ("Waseda University", "早稲田大学"), ("Tsinghua University", "清華大学"),
    ("Nagoya University", "名古屋大学"), ("Kyushu University", "九州大学"),
]  # fmt: skip

_FIELDS: list[tuple[str, str]] = [
    ("manufacturing", "製造"), ("finance", "金融"), ("retail", "小売"), ("healthcare", "医療"),
    ("local government", "自治体"), ("logistics", "物流"), ("legal", "法務"), ("education", "教育"),
    ("construction", "建設"), ("insurance", "保険"), ("real estate", "不動産"),
    ("media", "メディア"),
]  # fmt: skip

# Rare names: what makes the long tail of queries with only a few matches.
_SURNAMES: list[tuple[str, str]] = [
    ("佐藤", "Sato"), ("鈴木", "Suzuki"), ("高橋", "Takahashi"), ("田中", "Tanaka"),
    ("伊藤", "Ito"),
    ("渡辺", "Watanabe"), ("山本", "Yamamoto"), ("中村", "Nakamura"), ("小林", "Kobayashi"),
    ("加藤", "Kato"), ("吉田", "Yoshida"), ("山田", "Yamada"), ("佐々木", "Sasaki"),
    ("山口", "Yamaguchi"), ("松本", "Matsumoto"), ("井上", "Inoue"), ("木村", "Kimura"),
    ("清水", "Shimizu"), ("山崎", "Yamazaki"), ("池田", "Ikeda"), ("橋本", "Hashimoto"),
    ("阿部", "Abe"),
    ("石川", "Ishikawa"), ("山下", "Yamashita"), ("中島", "Nakajima"), ("石井", "Ishii"),
    ("小川", "Ogawa"), ("前田", "Maeda"), ("岡田", "Okada"), ("長谷川", "Hasegawa"),
    ("藤田", "Fujita"),
    ("後藤", "Goto"), ("近藤", "Kondo"), ("村上", "Murakami"), ("遠藤", "Endo"), ("青木", "Aoki"),
    ("坂本", "Sakamoto"), ("福田", "Fukuda"), ("太田", "Ota"), ("西村", "Nishimura"),
    ("藤井", "Fujii"),
    ("金子", "Kaneko"), ("岡本", "Okamoto"), ("藤原", "Fujiwara"), ("三浦", "Miura"),
    ("原田", "Harada"),
    ("松田", "Matsuda"), ("竹内", "Takeuchi"), ("小野", "Ono"), ("和田", "Wada"),
]  # fmt: skip
_GIVEN_NAMES: list[tuple[str, str]] = [
    ("太郎", "Taro"), ("健一", "Kenichi"), ("美咲", "Misaki"), ("直樹", "Naoki"), ("由美", "Yumi"),
    ("大輔", "Daisuke"), ("陽子", "Yoko"), ("翔太", "Shota"), ("彩", "Aya"), ("拓也", "Takuya"),
    ("真理子", "Mariko"), ("浩二", "Koji"), ("恵", "Megumi"), ("和也", "Kazuya"),
    ("智子", "Tomoko"),
    ("誠", "Makoto"), ("亮", "Ryo"), ("結衣", "Yui"), ("悠斗", "Yuto"), ("千尋", "Chihiro"),
]  # fmt: skip
_KANA: list[tuple[str, str]] = [
    ("ア", "a"), ("イ", "i"), ("カ", "ka"), ("キ", "ki"), ("サ", "sa"), ("シ", "shi"), ("タ", "ta"),
    ("ト", "to"), ("ナ", "na"), ("ノ", "no"), ("ハ", "ha"), ("ミ", "mi"), ("ラ", "ra"),
    ("リ", "ri"),
    ("ル", "ru"), ("レ", "re"), ("ロ", "ro"), ("ジ", "ji"), ("ゼ", "ze"), ("ベ", "be"),
    ("ポ", "po"),
    ("グ", "gu"), ("ド", "do"), ("メ", "me"), ("モ", "mo"), ("ヨ", "yo"), ("ワ", "wa"),
    ("ネ", "ne"),
    ("ソ", "so"), ("ク", "ku"), ("テ", "te"), ("ス", "su"), ("マ", "ma"), ("フ", "fu"),
    ("コ", "ko"),
    ("セ", "se"), ("ヒ", "hi"), ("ユ", "yu"),
]  # fmt: skip
_KANA_SUFFIXES: list[tuple[str, str]] = [
    ("テック", "tech"), ("ラボ", " Labs"), ("AI", " AI"), ("ロボティクス", " Robotics"),
    ("データ", " Data"), ("", ""),
]  # fmt: skip
_LATIN_SYLLABLES = [
    "vel", "trix", "nor", "dax", "qua", "zen", "lum", "ora", "kel", "syn", "vek", "tal", "mir",
    "fen", "quor", "bex", "lyr", "zan", "cor", "vio", "nex", "pra", "tor", "wyn", "xal", "yor",
    "hal", "jin", "kor", "mab",
]  # fmt: skip
_LATIN_ENDINGS = ["", "a", "io", "on", "ix", "ly"]

_SOURCES: list[tuple[str, str, str, int]] = [  # name, domain, language, weight
    ("ITmedia AI+", "www.itmedia.example.jp", "ja", 20),
    ("日経クロステック", "xtech.nikkei.example.jp", "ja", 15),
    ("Impress Watch", "www.watch.impress.example.jp", "ja", 12),
    ("ZDNET Japan", "japan.zdnet.example.jp", "ja", 7),
    ("Publickey", "www.publickey1.example.jp", "ja", 6),
    ("TechCrunch", "techcrunch.example.com", "en", 12),
    ("The Verge AI", "www.theverge.example.com", "en", 8),
    ("VentureBeat AI", "venturebeat.example.com", "en", 8),
    ("Ars Technica", "arstechnica.example.com", "en", 7),
    ("MIT Technology Review", "www.technologyreview.example.com", "en", 5),
]

_KINDS: list[tuple[str, int]] = [
    ("product", 30), ("policy", 14), ("research", 12), ("infra", 10), ("earnings", 8),
    ("funding", 8), ("acquisition", 6), ("security", 6), ("society", 6),
]  # fmt: skip
_KIND_CATEGORY = {
    "product": None, "policy": "policy", "research": "research", "infra": "infra",
    "earnings": "products", "funding": "funding", "acquisition": "funding",
    "security": "security", "society": "society",
}  # fmt: skip

# ── sentence templates ───────────────────────────────────────────────────────────────────────

_JA_TITLES: dict[str, list[str]] = {
    "product": [
        "{co}、{prod}の新版を公開 {topic}を強化", "{co}が{topic}向け新サービス、{place}で提供開始",
        "{co}、{prod}に{topic}機能を追加", "{co}の{prod}、日本語対応を大幅改善",
    ],
    "policy": [
        "{gov}、{topic}の規制強化へ新指針", "米中対立が{topic}に波及 {gov}が対応策",
        "{gov}、{topic}で事業者に説明責任 {year}年にも施行", "{topic}巡り{gov}が意見募集",
    ],
    "research": [
        "{univ}、{topic}の精度を高める新手法", "{co}の研究チーム、{topic}で新記録 論文を公開",
        "{topic}の課題、{univ}が新たな評価指標",
    ],
    "infra": [
        "{co}、{place}に大規模データセンター {money}投資",
        "{co}が{prod}の供給拡大 {topic}需要に対応",
        "データセンターの電力不足、{place}で深刻に",
        "半導体工場の建設ラッシュ、{place}で{co}が着工",
    ],
    "earnings": [
        "{co}の{quarter}決算、売上高{pct}%増 {topic}需要が追い風",
        "{co}、{quarter}は増収増益 {topic}関連が好調",
        "{co}株が{pct}%安、{quarter}決算で{topic}の減速懸念",
    ],
    "funding": [
        "{tail}、{money}を資金調達 {topic}を開発", "{co}、{place}のスタートアップに{money}出資",
        "{topic}スタートアップの{tail}が{money}調達",
    ],
    "acquisition": ["{co}、{co2}を{money}で買収へ", "{co}が{co2}買収で合意 {topic}事業を強化"],
    "security": [
        "{prod}に脆弱性、{co}が修正版を公開", "{topic}を悪用した攻撃が増加 {gov}が注意喚起",
        "{co}、{topic}対策の新機能を導入",
    ],
    "society": [
        "{topic}で変わる働き方 {field}の現場から", "{gov}、{topic}と子どもの安全で指針",
        "【解説】{topic}はどこへ向かうのか",
    ],
}  # fmt: skip

_EN_TITLES: dict[str, list[str]] = {
    "product": [
        "{co} releases a new version of {prod} with better {topic}",
        "{co} launches {topic} service in {place}",
        "{co} adds {topic} features to {prod}",
        "{co}'s {prod} gets a major Japanese-language update",
    ],
    "policy": [
        "{gov} tightens rules on {topic}", "US-China tensions spill over into {topic}",
        "{gov} wants accountability for {topic} by {year}", "{gov} opens consultation on {topic}",
    ],
    "research": [
        "{univ} researchers improve accuracy of {topic}",
        "{co} researchers set a new record in {topic}",
        "A new benchmark for {topic} from {univ}",
    ],
    "infra": [
        "{co} to build a {money} data center in {place}",
        "{co} expands {prod} supply as {topic} demand grows",
        "Data center power shortage worsens in {place}",
        "{co} breaks ground on a chip plant in {place}",
    ],
    "earnings": [
        "{co} revenue up {pct}% in {quarter} on {topic} demand",
        "{co} beats estimates as {topic} sales surge",
        "{co} shares fall {pct}% on {topic} slowdown fears",
    ],
    "funding": [
        "{tail} raises {money} to build {topic}", "{co} invests {money} in a {place} startup",
        "{topic} startup {tail} raises {money}",
    ],
    "acquisition": [
        "{co} to acquire {co2} for {money}", "{co} agrees to buy {co2} to bolster {topic}",
    ],
    "security": [
        "Vulnerability found in {prod}; {co} ships a fix",
        "Attacks abusing {topic} are rising, {gov} warns",
        "{co} rolls out new defences against {topic}",
    ],
    "society": [
        "How {topic} is changing work in {field}", "{gov} issues guidance on {topic} and children",
        "Explainer: where is {topic} heading?",
    ],
}  # fmt: skip

_JA_LEADS: dict[str, list[str]] = {
    "product": [
        ""
        "{co}は{day}、{topic}を活用した新サービスを発表した。{place}の企業向けに{month}から提供する。",
        "{co}は{prod}の新版を公開し、{topic}分野での競争力を高める。料金は従来から据え置く。",
    ],
    "policy": [
        "{gov}は{day}、{topic}に関する新たなガイドラインを公表し、事業者に対応を求めた。",
        "{gov}は{topic}を巡る規制の見直しに着手した。{year}年中に法案の提出を目指す。",
    ],
    "research": [
        "{univ}の研究チームは、{topic}の精度を大幅に高める手法を開発したと発表した。",
        "{co}の研究部門は{topic}に関する論文を公開し、主要なベンチマークで最高水準の性能を示した。",
    ],
    "infra": [
        "{co}は{place}に大規模なデータセンターを建設すると発表した。投資額は{money}に上る。",
        "{co}は{prod}の生産能力を拡大する。{topic}向けの需要が急増しているためだ。",
    ],
    "earnings": [
        "{co}が発表した{quarter}決算は、売上高が前年同期比{pct}%増の{money}だった。",
        "{co}の{quarter}決算は増収増益となり、{topic}関連の売り上げが全体をけん引した。",
    ],
    "funding": [
        "{co}は{place}のスタートアップに{money}を出資すると発表した。{topic}分野での協業を進める。",
        "{topic}を手がけるスタートアップへの投資が相次いでいる。{co}も{money}の出資を決めた。",
    ],
    "acquisition": [
        ""
        "関係者によると、{co}は{co2}の買収に向けて最終調整に入った。買収額は{money}規模とみられる。",
        "{co}は{co2}を買収することで合意したと発表した。{topic}事業の強化が狙いだ。",
    ],
    "security": [
        "{co}は{prod}に深刻な脆弱性が見つかったと発表し、利用者に更新を呼びかけた。",
        "{topic}を悪用したサイバー攻撃が増えているとして、{gov}が注意を呼びかけた。",
    ],
    "society": [
        "{topic}の普及で、{field}の現場では働き方が大きく変わりつつある。",
        "{gov}は{topic}が子どもに与える影響について、保護者向けの指針をまとめた。",
    ],
}  # fmt: skip

_EN_LEADS: dict[str, list[str]] = {
    "product": [
        "{co} on {day} announced a new service built on {topic}, "
        "launching for businesses in {place} in {month}.",
        "{co} released a new version of {prod}, aiming to strengthen "
        "its position in {topic}. Prices are unchanged.",
    ],
    "policy": [
        "{gov} on {day} published new guidelines on {topic} and asked companies to comply.",
        "{gov} has started reviewing its rules on {topic} and aims to submit a bill in {year}.",
    ],
    "research": [
        "Researchers at {univ} said they had developed a method that "
        "sharply improves the accuracy of {topic}.",
        "{co}'s research arm published a paper on {topic}, reporting "
        "state-of-the-art results on major benchmarks.",
    ],
    "infra": [
        "{co} said it will build a large data center in {place}, investing {money}.",
        "{co} is expanding production of {prod} as demand for {topic} surges.",
    ],
    "earnings": [
        "{co} reported {quarter} revenue of {money}, up {pct}% from a year earlier.",
        "{co} posted higher revenue and profit in {quarter}, driven by sales related to {topic}.",
    ],
    "funding": [
        "{co} said it will invest {money} in a startup based in "
        "{place} to work together on {topic}.",
        "Investment in {topic} startups keeps flowing: {co} has committed {money}.",
    ],
    "acquisition": [
        "{co} is in final talks to acquire {co2} in a deal valued "
        "at about {money}, people familiar said.",
        "{co} agreed to buy {co2}, a move aimed at strengthening its {topic} business.",
    ],
    "security": [
        "{co} disclosed a serious vulnerability in {prod} and urged users to update.",
        "{gov} warned that cyberattacks abusing {topic} are on the rise.",
    ],
    "society": [
        "The spread of {topic} is changing how people work in {field}.",
        "{gov} compiled guidance for parents on how {topic} affects children.",
    ],
}  # fmt: skip

_JA_TAIL_SENTENCES: dict[str, list[str]] = {
    "person": [
        "{univ}の{tail}教授らの研究グループは、{topic}に関する新たな成果を発表した。",
        "{tail}氏は「{topic}の実用化には、まだ解決すべき課題が多い」と話す。",
    ],
    "startup": [
        "{topic}を手がけるスタートアップの{tail}は、{money}の資金調達を実施したと発表した。",
        "{co}は{topic}分野のスタートアップ、{tail}と提携すると発表した。",
    ],
}
_EN_TAIL_SENTENCES: dict[str, list[str]] = {
    "person": [
        "A research group led by Professor {tail} at {univ} presented new results on {topic}.",
        '"There are still many problems to solve before {topic} is practical," said {tail}.',
    ],
    "startup": [
        "{tail}, a startup working on {topic}, said it had raised {money}.",
        "{co} announced a partnership with {tail}, a startup focused on {topic}.",
    ],
}

_JA_SENTENCES: list[str] = [
    "{co}の{person}は記者会見で「{topic}への投資を今後も拡大する」と述べた。",
    "米中の対立が続くなか、{co}は半導体の調達先の多様化を進めている。",
    "{gov}は先端半導体の輸出規制を強化する方針を示しており、業界への影響が懸念されている。",
    "専門家からは、{topic}の急速な普及に対して規制が追いついていないとの指摘も出ている。",
    "{co}は{co2}と{topic2}分野で提携し、{year}年までに共同でサービスを展開する計画だ。",
    "同社によると、新しいモデルは従来比で推論コストを{pct2}%削減できるという。",
    "生成AIの業務利用は国内企業でも広がっており、{field}分野での導入事例が増えている。",
    ""
    "AIエージェントが自律的にタスクを実行する仕組みについて、安全性の確保を求める声が強まっている。",
    "著作権者の団体は、学習データの利用について{co}に説明を求める声明を出した。",
    "株式市場では{co}の株価が一時{pct2}%上昇し、時価総額は{money2}に達した。",
    "{place}に新たな研究拠点を開設し、{num}人規模の技術者を採用する予定だ。",
    "{place2}でもデータセンターの新設計画が相次いでおり、電力の確保が大きな課題になっている。",
    "{prod}の利用者数は全世界で{num}万人を超えたという。",
    "今回の発表について、{co2}の広報担当者は「コメントは控える」としている。",
    "{topic2}を巡っては、{gov2}も実態調査に乗り出している。",
    "業界団体の調査では、国内企業の{pct2}%が{topic}の導入を検討していると回答した。",
    "一方で、誤った情報をもっともらしく生成するハルシネーションへの懸念は根強い。",
    "{co}はGPUの調達を急いでおり、{prod2}の確保に向けて{money2}を投じる。",
    "{field}の現場では、人手不足を背景に自動化への期待が高まっている。",
    "同社は{topic2}の研究開発にも力を入れており、{univ}との共同研究を進めている。",
    "個人情報の取り扱いについては、利用者の同意を前提とする方針だ。",
    "{gov}の担当者は「国際的なルール作りと歩調を合わせたい」と話した。",
    "アナリストは「{topic}市場は{year}年に{money2}規模へ拡大する」と予測する。",
    "{co}はオープンソースのモデルも公開しており、開発者コミュニティーからの評価は高い。",
    "{co2}も同様のサービスを準備しているとされ、競争は激しさを増している。",
    "日本市場では、{co}が{place2}に拠点を置き、国内の顧客開拓を進めている。",
    "新サービスは月額{num}円から利用でき、まずは法人向けに提供する。",
    "{topic}の分野では、大規模言語モデルの性能向上が続いている。",
    "セキュリティー企業によると、{topic2}を狙った攻撃は前年の{num}倍に増えた。",
    "同社は決算説明会で、{topic}関連の売上高が前年同期比{pct2}%増えたと説明した。",
    "電力消費の増加を受けて、原子力や再生可能エネルギーの活用を検討する動きもある。",
    "{co}は{year}年までに{topic2}関連の人材を{num}人育成する目標を掲げる。",
    "欧州では欧州AI法の適用が始まり、企業はリスク評価などの対応を迫られている。",
    "{prod}は画像や音声も扱えるマルチモーダルモデルで、応答速度も改善した。",
    "政府は補助金を通じて国内の計算資源の整備を後押ししている。",
    "買収が実現すれば、{topic}分野で国内最大級の事業規模となる。",
    "今後の焦点は、{topic}の収益化をどこまで進められるかだ。",
    "一部の利用者からは、料金体系が分かりにくいとの声も上がっている。",
    "同社は詳細を明らかにしていないが、{month}にも正式発表する見通しだ。",
    "{person2}も自身のSNSで今回の動きに言及した。",
]  # fmt: skip

_EN_SENTENCES: list[str] = [
    "\"We will keep expanding our investment in {topic},\" {person} said at a press conference.",
    "As US-China tensions persist, {co} has been diversifying where it buys its chips.",
    "{gov} has signalled tighter export controls on advanced "
    "semiconductors, worrying the industry.",
    "Experts say regulation has not kept pace with the rapid spread of {topic}.",
    "{co} and {co2} plan to jointly offer services in {topic2} by {year}.",
    "According to the company, the new model cuts inference costs "
    "by {pct2}% compared with its predecessor.",
    "Businesses in {field} are adopting generative AI faster than expected, analysts said.",
    "Calls are growing for safeguards on AI agents that carry out tasks on their own.",
    "A group of rights holders asked {co} to explain how it uses copyrighted training data.",
    "{co} shares rose as much as {pct2}% in early trading, lifting its market value to {money2}.",
    "The company plans to open a research hub in {place} and hire about {num} engineers.",
    "New data center projects are also piling up in {place2}, "
    "where securing power is a major challenge.",
    "{prod} now has more than {num} million users worldwide, the company said.",
    "A spokesperson for {co2} declined to comment on the announcement.",
    "{gov2} has also opened an inquiry into {topic2}.",
    "In an industry survey, {pct2}% of companies said they were considering {topic}.",
    "Concerns remain about hallucinations, where models produce plausible but wrong answers.",
    "{co} is racing to secure GPUs and will spend {money2} on {prod2} capacity.",
    "Labour shortages in {field} are driving interest in automation.",
    "The company is also investing in {topic2} research together with {univ}.",
    "The company said it would only use personal data with the consent of its users.",
    "\"We want to stay in step with international rule-making,\" an official at {gov} said.",
    "Analysts expect the market for {topic} to reach {money2} by {year}.",
    "{co} has also released open-weight models that are popular with developers.",
    "{co2} is reportedly preparing a similar service, and competition is intensifying.",
    "In Japan, {co} has set up an office in {place2} to win domestic customers.",
    "The new service starts at {num} dollars a month and is offered to businesses first.",
    "Large language models keep improving, raising the bar for {topic}.",
    "Attacks targeting {topic2} have grown {num}-fold from a year earlier, a security firm said.",
    "On its earnings call, the company said {topic} revenue rose {pct2}% year on year.",
    "Rising power consumption has prompted some operators to "
    "consider nuclear and renewable energy.",
    "{co} aims to train {num} engineers in {topic2} by {year}.",
    "In Europe the AI Act has started to apply, and companies must carry out risk assessments.",
    "{prod} is a multimodal model that handles images and "
    "audio, and it responds faster than before.",
    "The government is backing domestic compute capacity through subsidies.",
    "If completed, the acquisition would create one of the largest players in {topic}.",
    "The key question is how quickly {topic} can be turned into revenue.",
    "Some users complained that the pricing is hard to understand.",
    "The company did not give details but is expected to make a formal announcement in {month}.",
    "{person2} also commented on the move on social media.",
    "The rain of announcements is hard to keep up with, but the "
    "company said it would maintain its roadmap.",
    "Training such models again and again on the same data brings diminishing returns.",
]  # fmt: skip

_JA_OVERVIEW_TAILS = [
    "{co}は{topic}分野での競争力強化を狙う。",
    "{topic}を巡る各社の競争が一段と激しくなっている。",
    "{place}を中心に展開し、{year}年までの本格普及を目指す。",
]
_JA_POINTS = [
    "{co}が{topic}に関する取り組みを発表",
    "{prod}の機能強化と提供地域の拡大",
    "{topic}市場は{year}年に{money2}規模へ",
    "{gov}が関連ルールの整備を検討",
    "{place}での展開を予定",
    "料金体系と提供時期の詳細は未定",
    "競合の{co2}も同様の取り組みを進める",
    "安全性と透明性の確保が課題",
]
_JA_WHY = [
    "{topic}を巡る競争が激しさを増しており、国内企業の戦略にも影響するため。",
    "規制の動向次第で、{topic}の事業展開が大きく変わる可能性があるため。",
    "{field}分野での生成AI活用の先行事例となるため。",
    "計算資源や電力の確保が、AI開発の競争力を左右しつつあるため。",
]

_QUARTERS = [("Q1", "第1四半期"), ("Q2", "第2四半期"), ("Q3", "第3四半期"), ("Q4", "第4四半期")]
_MONTHS = [
    ("January", "1月"), ("February", "2月"), ("March", "3月"), ("April", "4月"), ("May", "5月"),
    ("June", "6月"), ("July", "7月"), ("August", "8月"), ("September", "9月"),
    ("October", "10月"), ("November", "11月"), ("December", "12月"),
]  # fmt: skip
_CATEGORIES = (
    "research", "products", "funding", "policy", "japan",
    "agents", "infra", "opensource", "security", "society",
)  # fmt: skip

# ── queries ──────────────────────────────────────────────────────────────────────────────────
# (class, share of --queries, pool). The rare class is filled from the generated long tail.

_QUERY_POOLS: list[tuple[str, float, list[str]]] = [
    ("1 char", 0.08, [
        "米", "株", "中", "円", "税", "薬", "脳", "鉄", "銀", "核", "欧", "韓", "台", "電", "雇",
        "訴", "量", "猫", "詐", "炭",
    ]),
    ("2 chars", 0.15, [
        "規制", "買収", "米中", "AI", "決算", "半導", "投資", "著作", "電力", "医療", "推論",
        "学習",
        "提携", "訴訟", "量子", "人材", "政府", "株価", "教育", "雇用", "検索", "広告", "防衛",
        "選挙", "物流", "農業", "創薬", "蒸留", "液冷", "補助", "EU", "G7", "ロボ", "GPU", "台湾",
        "欧州",
    ]),
    ("ja word", 0.15, [
        "半導体", "生成AI", "大規模言語モデル", "経済産業省", "輸出規制", "資金調達", "自動運転",
        "個人情報", "著作権", "量子コンピューター", "日本語LLM", "業務提携", "独占禁止法",
        "新規株式公開", "公正取引委員会", "理化学研究所", "東京大学", "前年同期比", "時価総額",
        "脆弱性", "偽情報", "画像生成", "音声認識", "気候変動", "光電融合", "準同型暗号",
        "広帯域メモリー", "子どもの安全", "欧州AI法", "孫正義", "AI戦略", "AI人材", "売上高",
        "情報漏洩", "最終調整", "ＡＩ",
    ]),
    ("katakana", 0.12, [
        "エージェント", "データセンター", "クラウド", "ロボット", "スタートアップ", "セキュリティ",
        "オープンソース", "ディープフェイク", "ソフトバンク", "エヌビディア", "マイクロソフト",
        "グーグル", "アンソロピック", "ハルシネーション", "ファインチューニング", "ベンチマーク",
        "マルチモーダル", "プロンプトインジェクション", "チップレット", "ニューロモーフィック",
        "ソブリン", "ラピダス", "キオクシア", "コールセンター", "スマートフォン", "ガイドライン",
        "プライバシー", "ライセンス",
    ]),
    ("english", 0.18, [
        "nvidia", "OpenAI", "GPU", "model", "agent", "agents", "inference", "chips", "regulation",
        "acquisition", "earnings", "copyright", "Copilot", "Llama", "H100", "Blackwell", "tsuzumi",
        "quantization", "semiconductors", "export", "antitrust", "startup", "funding", "benchmark",
        "deepfakes", "hallucinations", "Gemini", "Claude", "ChatGPT", "Anthropic", "Microsoft",
        "Taiwan", "Europe", "GPT-4", "GPT-5", "power", "cooling", "robotics", "privacy",
        "Kumamoto", "Rapidus", "sovereign", "chiplets", "photonics", "neuromorphic", "homomorphic",
        "ＧＰＵ",
    ]),
    ("two terms", 0.14, [
        "NVIDIA 決算", "OpenAI 買収", "米中 半導体", "生成AI 規制", "agent security",
        "データセンター 電力", "AI 著作権", "Google Gemini", "ソフトバンク 投資",
        "Microsoft Copilot",
        "TSMC 熊本", "EU 規制", "Anthropic Claude", "export controls", "open weights",
        "AIエージェント 安全性", "量子 研究", "半導体 補助金", "楽天 AI", "米 株", "data centers",
        "ディープフェイク 選挙", "Meta Llama", "自動運転 トヨタ", "医療 生成AI", "GPU 調達",
        "AI 雇用", "Rapidus 北海道", "DeepSeek 中国", "fine-tuning models",
    ]),
    ("rare name", 0.18, []),
]  # fmt: skip

# ── small helpers ────────────────────────────────────────────────────────────────────────────


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Zipf:
    """Draw items with weight 1 / rank**s (rank from 1): the head common, the tail rare."""

    def __init__(self, count: int, s: float = 1.0) -> None:
        total = 0.0
        self.cumulative: list[float] = []
        for rank in range(1, count + 1):
            total += 1.0 / rank**s
            self.cumulative.append(total)
        self.total = total

    def index(self, rng: random.Random) -> int:
        return min(bisect(self.cumulative, rng.random() * self.total), len(self.cumulative) - 1)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def fmt_bytes(value: int) -> str:
    return f"{value / 1e6:,.1f} MB"


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(result, milliseconds)."""
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


# ── corpus generation ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Tail:
    kind: str  # person or startup
    ja: str
    en: str


def _tail_entities(rng: random.Random) -> list[Tail]:
    """About 7,000 rare names: Japanese researchers, katakana startups, Latin startups."""
    out: list[Tail] = [
        Tail("person", f"{sj}{gj}", f"{ge} {se}") for sj, se in _SURNAMES for gj, ge in _GIVEN_NAMES
    ]
    cores: set[str] = set()
    while len(cores) < 3000:
        parts = rng.sample(_KANA, 3)
        core_ja = "".join(k for k, _ in parts)
        if core_ja in cores:
            continue
        cores.add(core_ja)
        suffix_ja, suffix_en = rng.choice(_KANA_SUFFIXES)
        core_en = "".join(r for _, r in parts).capitalize()
        out.append(Tail("startup", core_ja + suffix_ja, core_en + suffix_en))
    latin: set[str] = set()
    while len(latin) < 3000:
        name = ("".join(rng.sample(_LATIN_SYLLABLES, 2)) + rng.choice(_LATIN_ENDINGS)).capitalize()
        if name not in latin:
            latin.add(name)
            out.append(Tail("startup", name, name))
    rng.shuffle(out)
    return out


@dataclass(slots=True)
class Story:
    lead_id: int
    lead_source: int
    kind: str
    slots_ja: dict[str, str]
    slots_en: dict[str, str]
    category: str
    keywords: list[str]
    tail: int  # index into the tail list, -1 for none


@dataclass(slots=True)
class CorpusStats:
    story_of: list[int] = field(default_factory=list)  # article id → story id (index 0 unused)
    tail_counts: Counter[int] = field(default_factory=Counter)
    japanese: int = 0
    duplicates: int = 0
    full_width: int = 0
    body_bytes: int = 0


@dataclass(slots=True)
class Batch:
    articles: list[dict[str, Any]]
    summaries: list[dict[str, Any]]


class Corpus:
    """Deterministic articles for one seed: the same rows every time `batches` is iterated."""

    def __init__(self, count: int, seed: int, anchor: datetime) -> None:
        self.count = count
        self.seed = seed
        self.anchor = anchor
        self.tails = _tail_entities(random.Random(seed + 1))
        self.stats = CorpusStats()
        self._companies = Zipf(len(_COMPANIES), 1.0)
        self._products = Zipf(len(_PRODUCTS), 1.0)
        self._topics = Zipf(len(_TOPICS), 1.0)
        self._govs = Zipf(len(_GOVS), 1.0)
        self._places = Zipf(len(_PLACES), 1.0)
        self._people = Zipf(len(_PEOPLE), 0.8)
        self._univs = Zipf(len(_UNIVERSITIES), 0.8)
        self._fields = Zipf(len(_FIELDS), 0.7)
        self._tail = Zipf(len(self.tails), 0.9)
        self._kinds = [k for k, _ in _KINDS]
        self._kind_weights = [w for _, w in _KINDS]
        self._source_weights = [w for *_, w in _SOURCES]

    def _money(self, rng: random.Random) -> tuple[str, str]:
        amount = rng.choice([rng.randint(2, 99), rng.randint(100, 990), rng.randint(1, 30)])
        unit = rng.random()
        if unit < 0.5:
            return f"{amount}億円", f"¥{amount / 10:g} billion"
        if unit < 0.85:
            return f"{amount}億ドル", f"${amount / 10:g} billion"
        return f"{amount}兆円", f"¥{amount:g} trillion"

    def _slots(self, rng: random.Random, day: datetime) -> tuple[dict[str, str], dict[str, str]]:
        """Entities of a story in both languages (same choices, so translations agree)."""
        co, co2 = _COMPANIES[self._companies.index(rng)], _COMPANIES[self._companies.index(rng)]
        prod, prod2 = _PRODUCTS[self._products.index(rng)], _PRODUCTS[self._products.index(rng)]
        topic, topic2 = _TOPICS[self._topics.index(rng)], _TOPICS[self._topics.index(rng)]
        gov, gov2 = _GOVS[self._govs.index(rng)], _GOVS[self._govs.index(rng)]
        place, place2 = _PLACES[self._places.index(rng)], _PLACES[self._places.index(rng)]
        person, person2 = _PEOPLE[self._people.index(rng)], _PEOPLE[self._people.index(rng)]
        univ = _UNIVERSITIES[self._univs.index(rng)]
        fld = _FIELDS[self._fields.index(rng)]
        money, money2 = self._money(rng), self._money(rng)
        quarter = rng.choice(_QUARTERS)
        month = rng.choice(_MONTHS)
        pct, pct2, num = rng.randint(2, 85), rng.randint(3, 60), rng.choice([20, 50, 100, 300])
        year = str(rng.choice([2025, 2026, 2027, 2028, 2030]))
        ja = {
            "co": rng.choice(co[1]), "co2": rng.choice(co2[1]), "prod": prod, "prod2": prod2,
            "topic": topic[1], "topic2": topic2[1], "gov": gov[1], "gov2": gov2[1],
            "place": place[1], "place2": place2[1], "person": person[1], "person2": person2[1],
            "univ": univ[1], "field": fld[1], "money": money[0], "money2": money2[0],
            "quarter": quarter[1], "month": month[1], "pct": str(pct), "pct2": str(pct2),
            "num": str(num), "year": year, "day": f"{day.month}月{day.day}日", "tail": "",
            "co_key": co[1][0], "topic_en": topic[0], "category": topic[2],
        }  # fmt: skip
        en = {
            "co": co[0], "co2": co2[0], "prod": prod, "prod2": prod2, "topic": topic[0],
            "topic2": topic2[0], "gov": gov[0], "gov2": gov2[0], "place": place[0],
            "place2": place2[0], "person": person[0], "person2": person2[0], "univ": univ[0],
            "field": fld[0], "money": money[1], "money2": money2[1], "quarter": quarter[0],
            "month": month[0], "pct": str(pct), "pct2": str(pct2), "num": str(num), "year": year,
            "day": f"{month[0]} {day.day}", "tail": "",
        }  # fmt: skip
        return ja, en

    def _new_story(self, rng: random.Random, lead_id: int, source: int, day: datetime) -> Story:
        kind = rng.choices(self._kinds, self._kind_weights)[0]
        ja, en = self._slots(rng, day)
        tail = -1
        if kind == "funding" or rng.random() < 0.4:
            tail = self._tail.index(rng)
            ja["tail"] = self.tails[tail].ja
            en["tail"] = self.tails[tail].en
            if kind == "funding" and self.tails[tail].kind == "person":
                kind = "research"
        category = _KIND_CATEGORY[kind] or ja["category"]
        if category == "products" and ja["co_key"] in ("富士通", "NEC", "楽天", "ソニー", "NTT"):
            category = "japan"
        if "エージェント" in ja["topic"] and rng.random() < 0.8:
            category = "agents"
        keywords = [ja["co_key"], ja["topic"], ja["prod"]]
        if tail >= 0:
            keywords.append(ja["tail"])
        if rng.random() < 0.5:
            keywords.append(ja["place"])
        return Story(lead_id, source, kind, ja, en, category, keywords, tail)

    def _body(self, rng: random.Random, story: Story, japanese: bool) -> str:
        slots = story.slots_ja if japanese else story.slots_en
        leads = (_JA_LEADS if japanese else _EN_LEADS)[story.kind]
        pool = _JA_SENTENCES if japanese else _EN_SENTENCES
        lead = rng.choice(leads).format_map(slots)
        sentences = [lead[0].upper() + lead[1:]]
        if story.tail >= 0:
            tails = _JA_TAIL_SENTENCES if japanese else _EN_TAIL_SENTENCES
            sentences.append(rng.choice(tails[self.tails[story.tail].kind]).format_map(slots))
        target = rng.randint(1000, 3000)
        size = sum(len(s.encode()) for s in sentences)
        for template in rng.sample(pool, len(pool)):
            if size >= target:
                break
            sentence = template.format_map(slots)
            sentence = sentence[0].upper() + sentence[1:]
            sentences.append(sentence)
            size += len(sentence.encode()) + 1
        paragraphs: list[str] = []
        step = 3 if japanese else 4
        for start in range(0, len(sentences), step):
            chunk = sentences[start : start + step]
            paragraphs.append(("" if japanese else " ").join(chunk))
        return "\n".join(paragraphs)

    def _summary(
        self,
        rng: random.Random,
        story: Story,
        article_id: int,
        title_ja: str,
        content_hash: str,
        created: datetime,
    ) -> dict[str, Any]:
        ja = story.slots_ja
        lead = rng.choice(_JA_LEADS[story.kind]).format_map(ja)
        overview = lead + rng.choice(_JA_OVERVIEW_TAILS).format_map(ja)
        if story.tail >= 0:
            overview += rng.choice(_JA_TAIL_SENTENCES[self.tails[story.tail].kind]).format_map(ja)
        points = [p.format_map(ja) for p in rng.sample(_JA_POINTS, 3)]
        return {
            "id": article_id,
            "article_id": article_id,
            "title_ja": title_ja,
            "overview": overview,
            "points": points,
            "why_important": rng.choice(_JA_WHY).format_map(ja),
            "keywords": list(story.keywords),
            "category": story.category,
            "importance": rng.choice([1, 1, 2, 2, 2, 3]),
            "method": "llm",
            "model": "gpt-4o-mini",
            "prompt_version": "bench",
            "content_hash": content_hash,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "created_at": created,
        }

    def batches(self, size: int) -> Iterator[Batch]:
        rng = random.Random(self.seed)
        stats = CorpusStats(story_of=[0])
        recent: list[Story] = []
        start = self.anchor - timedelta(days=90)
        span = timedelta(days=90).total_seconds()
        articles: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        for article_id in range(1, self.count + 1):
            published = start + timedelta(
                seconds=span * article_id / self.count + rng.uniform(-3600, 3600)
            )
            published = min(published, self.anchor)
            if len(recent) > 20 and rng.random() < 0.10:
                story = recent[rng.randrange(len(recent))]
                others = [i for i in range(len(_SOURCES)) if i != story.lead_source]
                source = rng.choices(others, [self._source_weights[i] for i in others])[0]
                stats.duplicates += 1
            else:
                source = rng.choices(range(len(_SOURCES)), self._source_weights)[0]
                story = self._new_story(rng, article_id, source, published)
                recent.append(story)
                if len(recent) > 400:
                    recent.pop(0)
            _, domain, language, _ = _SOURCES[source]
            japanese = language == "ja"
            slots = story.slots_ja if japanese else story.slots_en
            titles = (_JA_TITLES if japanese else _EN_TITLES)[story.kind]
            title = rng.choice(titles).format_map(slots)
            title = title[0].upper() + title[1:]
            body = self._body(rng, story, japanese)
            if japanese and rng.random() < 0.03:  # some outlets write full-width Latin letters
                title, body = title.replace("AI", "ＡＩ"), body.replace("AI", "ＡＩ")
                stats.full_width += 1
            title_ja = (
                title if japanese else rng.choice(_JA_TITLES[story.kind]).format_map(story.slots_ja)
            )
            digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()
            first_seen = published + timedelta(minutes=rng.randint(1, 90))
            url, guid = f"https://{domain}/news/{article_id:07d}.html", f"{domain}-{article_id}"
            articles.append(
                {
                    "id": article_id,
                    "source_id": source + 1,
                    "url": url,
                    "guid": guid,
                    "entry_key": entry_key(guid, url),
                    "canonical_url": url,
                    "title": title,
                    "language": language,
                    "published_at": published,
                    "first_seen_at": first_seen,
                    "body_text": body,
                    "content_hash": digest,
                    "story_id": story.lead_id,
                }
            )
            summaries.append(self._summary(rng, story, article_id, title_ja, digest, first_seen))
            stats.story_of.append(story.lead_id)
            if story.tail >= 0:
                stats.tail_counts[story.tail] += 1
            stats.japanese += japanese
            stats.body_bytes += len(body.encode())
            if len(articles) >= size:
                yield Batch(articles, summaries)
                articles, summaries = [], []
        if articles:
            yield Batch(articles, summaries)
        self.stats = stats

    def sources(self) -> list[dict[str, Any]]:
        return [
            {
                "id": i + 1,
                "name": name,
                "url": f"https://{domain}/feed.xml",
                "category": "products",
                "language": language,
                "enabled": True,
                "trusted": True,
                "error_count": 0,
                "created_at": self.anchor - timedelta(days=120),
            }
            for i, (name, domain, language, _) in enumerate(_SOURCES)
        ]


def build_queries(corpus: Corpus, count: int, seed: int) -> list[tuple[str, str]]:
    """(class, query text): a fixed share per class, drawn with the seed; rare names are taken
    from the generated long tail (names carried by 1–10 articles)."""
    rng = random.Random(seed + 2)
    shares = [share for _, share, _ in _QUERY_POOLS]
    wanted = [int(count * s) for s in shares]
    wanted[-1] += count - sum(wanted)
    rare_ids = sorted(i for i, n in corpus.stats.tail_counts.items() if 1 <= n <= 10)
    if len(rare_ids) < wanted[-1]:
        rare_ids = sorted(corpus.stats.tail_counts, key=lambda i: corpus.stats.tail_counts[i])
    out: list[tuple[str, str]] = []
    for (name, _, pool), n in zip(_QUERY_POOLS, wanted, strict=True):
        if name == "rare name":
            picks = rng.sample(rare_ids, min(n, len(rare_ids)))
            texts = []
            for i in picks:
                tail = corpus.tails[i]
                texts.append(tail.en if tail.ja == tail.en or rng.random() < 0.15 else tail.ja)
            # a few rare names combined with a common word
            for j in range(0, len(texts), 6):
                texts[j] = f"{texts[j]} {rng.choice(['AI', '資金調達', 'startup', '研究'])}"
        else:
            texts = rng.sample(pool, min(n, len(pool)))
            texts += rng.choices(pool, k=n - len(texts))
        out.extend((name, t) for t in texts)
    return out


# ── database work ────────────────────────────────────────────────────────────────────────────


def use_schema(engine: Engine, schema: str) -> None:
    """Every new connection of the engine works in the bench's schema (the SQLAlchemy recipe;
    a URL `options=-csearch_path=…` would break Alembic's config interpolation)."""
    if schema == "public":
        return

    def set_search_path(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION search_path = {schema}")
        cursor.close()
        dbapi_connection.autocommit = autocommit

    event.listen(engine, "connect", set_search_path, insert=True)


def reset_postgres(url: str, schema: str) -> None:
    """DROP SCHEMA … CASCADE and CREATE SCHEMA: everything in it is lost."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"bad schema name {schema!r}")
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            others = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            if others:
                log(f"warning: {others} other session(s) use this database (tests?)")
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
            connection.commit()
    finally:
        db.dispose()


def load(db: Database, corpus: Corpus, batch: int) -> float:
    """Bulk-insert sources, articles and summaries; returns seconds (generation included)."""
    start = time.perf_counter()

    def insert_sources(*, session: Session) -> None:
        session.execute(insert(Source.__table__), corpus.sources())  # type: ignore[attr-defined]

    db.call(insert_sources)
    done = 0
    for chunk in corpus.batches(batch):

        def insert_batch(*, session: Session, chunk: Batch = chunk) -> None:
            session.execute(insert(Article.__table__), chunk.articles)  # type: ignore[attr-defined]
            session.execute(insert(Summary.__table__), chunk.summaries)  # type: ignore[attr-defined]

        db.call(insert_batch)
        done += len(chunk.articles)
        if done % (batch * 10) == 0 or done == corpus.count:
            rate = done / (time.perf_counter() - start)
            log(f"  generated + loaded {done:,}/{corpus.count:,} ({rate:,.0f}/s)")
    if db.backend == "postgresql":
        with db.engine.connect() as connection:
            for table in ("sources", "articles", "summaries"):
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                top = f"(SELECT max(id) FROM {table})"
                connection.execute(text(f"SELECT setval({sequence}, {top})"))
            connection.commit()
    return time.perf_counter() - start


def build_index(db: Database) -> float:
    """What `ainews reindex` does (bot.app.reindex): clear, then index_articles in batches."""
    start = time.perf_counter()
    ids = db.call(all_article_ids)
    db.call(clear_index)
    for offset in range(0, len(ids), REINDEX_BATCH):
        db.call(index_articles, article_ids=ids[offset : offset + REINDEX_BATCH])
        done = offset + REINDEX_BATCH
        if done % 10_000 == 0:
            rate = done / (time.perf_counter() - start)
            log(f"  indexed {done:,}/{len(ids):,} ({rate:,.0f}/s)")
    return time.perf_counter() - start


def count_rows(db: Database) -> dict[str, int]:
    index_table = "article_search" if db.backend == "postgresql" else "article_fts"
    with db.engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("articles", "summaries", index_table)
        }


def sqlite_size(db: Database, path: Path) -> tuple[int, dict[str, int]]:
    """File size (db + WAL + SHM) after a checkpoint, and bytes per object group (dbstat)."""
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        parts: dict[str, int] = {}
        try:
            for name, size in connection.exec_driver_sql(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
            ):
                group = (
                    "article_fts (index)" if str(name).startswith("article_fts")
                    else "articles" if str(name).startswith(("articles", "ix_articles",
                                                             "sqlite_autoindex_articles"))
                    else "summaries" if "summaries" in str(name)
                    else "other"
                )  # fmt: skip
                parts[group] = parts.get(group, 0) + int(size)
        except Exception:  # dbstat is optional in SQLite builds
            parts = {}
    total = sum(
        p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
    )
    return total, parts


def postgres_size(db: Database) -> tuple[int, dict[str, int]]:
    """The bench schema's tables with their indexes and TOAST (pg_database_size also counts
    whatever else lives in the database, e.g. the tests' schema), and the parts."""
    with db.engine.connect() as connection:
        total = int(
            connection.execute(
                text(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            ).scalar_one()
        )
        parts = {
            "pg_database_size": int(
                connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
        }
        for label, expr in (
            ("article_search (total)", "pg_total_relation_size('article_search')"),
            ("  GIN document", "pg_relation_size('ix_article_search_document')"),
            ("  GIN chars", "pg_relation_size('ix_article_search_chars')"),
            ("articles (total)", "pg_total_relation_size('articles')"),
            ("summaries (total)", "pg_total_relation_size('summaries')"),
        ):
            parts[label] = int(connection.execute(text(f"SELECT {expr}")).scalar_one())
    return total, parts


# ── measuring queries ────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class QueryResult:
    cls: str
    text: str
    first_ms: float = 0.0
    search_ms: float = 0.0
    sql_ms: float = 0.0
    sql_nobody_ms: float = 0.0
    sql_sub_ms: float = 0.0
    py_rank_ms: float = 0.0
    py_hits_ms: float = 0.0
    rank_ms: float = 0.0
    match_ms: float = 0.0
    candidates: int = 0
    stories_total: int = 0  # SearchPage.total (stories among the candidates)
    hits10: list[int] = field(default_factory=list)
    index_matches: int = 0
    scan_ms: float = 0.0
    scan_matches: int = 0
    found10: int = 0
    found_big: int = 0
    substring10: int = 0  # ≤ 10 group: misses that are LIKE matches inside a longer word
    agree: int = 0  # scan matches the index matches too (full sets)
    index_only: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def python_ms(self) -> float:
        return max(0.0, self.search_ms - self.sql_ms)


def _query(q: str, limit: int = 10) -> SearchQuery:
    return SearchQuery(text=parse_query_text(q), limit=limit)


def _matching(query: SearchQuery, postgres: bool) -> tuple[str, str, dict[str, Any]]:
    """(WHERE condition, relevance expression over every match, params), built the way
    query.py builds them but independent of the shape of its candidate SQL."""
    if postgres:
        params: dict[str, Any] = {}
        terms = list(query.text.required)

        def pg_term(term: Any, index: int) -> str:
            column = "x.chars" if term.single_char else "x.document"
            return f"{column} @@ {_pg_tsquery(term, index, params)}"

        condition = "(" + " AND ".join(pg_term(t, i) for i, t in enumerate(terms)) + ")"
        for j, term in enumerate(query.text.excluded, start=len(terms)):
            condition += f" AND NOT ({pg_term(term, j)})"
        words = [f":t{i}" for i, t in enumerate(terms) if not t.single_char]
        tsquery = " || ".join(f"phraseto_tsquery('simple', {w})" for w in words)
        relevance = f"ts_rank('{PG_WEIGHTS}', x.document, {tsquery})" if words else "0.1"
        return condition, relevance, params
    expression = "(" + " AND ".join(f"({_fts_term(t)})" for t in query.text.required) + ")"
    for term in query.text.excluded:
        expression += f" NOT ({_fts_term(term)})"
    weights = ", ".join(map(str, FTS_WEIGHTS))
    return "article_fts MATCH :match", f"-bm25(article_fts, {weights})", {"match": expression}


class Backend:
    """The bench's view of one database: the real search, its parts, and the naive scan."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.postgres = db.backend == "postgresql"
        self.table = "article_search x" if self.postgres else "article_fts"
        self.id = "x.article_id" if self.postgres else "article_fts.rowid"

    def search(self, q: str, limit: int = 10) -> SearchPage:
        return self.db.call(search, query=_query(q, limit))

    def parts(self, session: Session, result: QueryResult) -> None:
        """Time the pieces of one search: the candidate SQL as query.py sends it (and without
        body_text), ranking the newest WINDOW matches only, ranking every match (the approach
        before the window), enumerating every match, and the Python steps."""
        query = _query(result.text)
        if not query.text.required:
            return
        if self.postgres:  # as query.search runs it
            sql, params = _postgres_sql(query, shares=_token_shares(session))
            session.execute(text("SET enable_seqscan = off"))
        else:
            sql, params = _sqlite_sql(query)
        rows, result.sql_ms = timed(lambda: row_dicts(session.execute(text(sql), params)))
        result.candidates = len(rows)
        nobody = sql.replace("a.body_text,", "'' AS body_text,", 1)
        _, result.sql_nobody_ms = timed(lambda: session.execute(text(nobody), params).all())
        if self.postgres:
            session.execute(text("RESET enable_seqscan"))
        condition, relevance, mparams = _matching(query, self.postgres)
        mparams |= {"limit": CANDIDATES, "window": WINDOW or 10**9}
        base = f"SELECT {self.id} AS id, {relevance} AS r FROM {self.table} WHERE {condition}"
        window_sql = (
            f"SELECT id, r FROM ({base} ORDER BY {self.id} DESC LIMIT :window) w"
            " ORDER BY r DESC, id DESC LIMIT :limit"
        )
        rank_sql = f"{base} ORDER BY r DESC, id DESC LIMIT :limit"
        match_sql = f"SELECT {self.id} FROM {self.table} WHERE {condition}"
        _, result.sql_sub_ms = timed(lambda: session.execute(text(window_sql), mparams).all())
        _, result.rank_ms = timed(lambda: session.execute(text(rank_sql), mparams).all())
        # Python: ranking (normalise() of every candidate's titles) and the page's hits.
        try:
            now = datetime.now(UTC)
            ranked, result.py_rank_ms = timed(lambda: _rank(rows, query.text.required, now))
            page = _collapse(ranked)[: query.limit]
            # query._texts reads the shown hits' bodies (SQL, counted here with the snippets)
            _, result.py_hits_ms = timed(
                lambda: [
                    _hit(d | texts[d["article_id"]], o, query.text)
                    for texts in [_texts(session, [d["article_id"] for d, _ in page])]
                    for d, o in page
                ]
            )
        except Exception as exc:  # query.py's private helpers changed: skip this detail
            log(f"python breakdown skipped: {type(exc).__name__}: {exc}")
        ids, result.match_ms = timed(lambda: session.execute(text(match_sql), mparams).all())
        result.index_matches = len(ids)

    def index_has(self, session: Session, article_id: int, q: str) -> bool:
        """Whether the index matches this one article for the query."""
        query = _query(q)
        if not query.text.required:
            return False
        condition, _, params = _matching(query, self.postgres)
        check = f"SELECT 1 FROM {self.table} WHERE {self.id} = :aid AND {condition}"
        return session.execute(text(check), {**params, "aid": article_id}).first() is not None

    def index_ids(self, session: Session, q: str) -> set[int]:
        query = _query(q)
        if not query.text.required:
            return set()
        condition, _, params = _matching(query, self.postgres)
        match_sql = f"SELECT {self.id} FROM {self.table} WHERE {condition}"
        return {int(r[0]) for r in session.execute(text(match_sql), params)}

    def scan_sql(self, q: str) -> tuple[str, dict[str, str]]:
        """The naive query: one LIKE group per whitespace-separated term, ANDed. PostgreSQL uses
        ILIKE to match SQLite's ASCII-case-insensitive LIKE; keywords is a JSON column there."""
        like = "ILIKE" if self.postgres else "LIKE"
        keywords = "CAST(s.keywords AS TEXT)" if self.postgres else "s.keywords"
        columns = ["a.title", "a.body_text", "s.title_ja", "s.overview", keywords]
        params: dict[str, str] = {}
        groups = []
        for i, term in enumerate(q.split()):
            escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params[f"p{i}"] = f"%{escaped}%"
            ors = " OR ".join(f"{c} {like} :p{i} ESCAPE '\\'" for c in columns)
            groups.append(f"({ors})")
        sql = (
            "SELECT a.id FROM articles a LEFT JOIN summaries s ON s.article_id = a.id WHERE "
            + " AND ".join(groups)
        )
        return sql, params

    def scan(self, session: Session, q: str) -> set[int]:
        sql, params = self.scan_sql(q)
        return {int(r[0]) for r in session.execute(text(sql), params)}


def _wordish(char: str) -> bool:
    """A Latin letter or digit, full-width ones included (ＡＩ)."""
    return unicodedata.normalize("NFKC", char).isascii() and char.isalnum()


def _inside_word(original: str, term: str) -> str | None:
    """The longer Latin word the term occurs in when it never occurs as a whole word."""
    lowered, needle = original.lower(), term.lower()
    at = lowered.find(needle)
    found: str | None = None
    while at >= 0:
        before = original[at - 1] if at > 0 else " "
        after = original[at + len(term)] if at + len(term) < len(original) else " "
        if (_wordish(term[0]) and _wordish(before)) or (_wordish(term[-1]) and _wordish(after)):
            left, right = at, at + len(term)
            while left > 0 and _wordish(original[left - 1]):
                left -= 1
            while right < len(original) and _wordish(original[right]):
                right += 1
            found = found or original[left:right]
        else:
            return None
        at = lowered.find(needle, at + 1)
    return found


def _lone_cjk_char(term: str) -> str | None:
    """A one-character CJK run inside a longer query term (法 in 欧州AI法)."""
    parsed = parse_query_text(term).required
    if not parsed or parsed[0].single_char:
        return None
    for token in parsed[0].tokens:
        if len(token) == 1 and _CJK_RUN.fullmatch(token):
            return token
    return None


_CJK_RUN = re.compile(f"[{_CJK}]+")


def miss_reason(backend: Backend, session: Session, article_id: int, q: str) -> tuple[str, str]:
    """Why the scan matched an article the index did not: (reason, example). Each term is
    checked against the index alone, so the term that fails is the one explained."""
    row = session.execute(
        text(
            "SELECT a.title, a.body_text, s.title_ja, s.overview, s.keywords FROM articles a "
            "LEFT JOIN summaries s ON s.article_id = a.id WHERE a.id = :id"
        ),
        {"id": article_id},
    ).one()
    texts = [str(v) for v in row if v is not None]
    for term in q.split():
        if backend.index_has(session, article_id, term):
            continue
        inside = (_inside_word(t, term) for t in texts if term.lower() in t.lower())
        words = [w for w in inside if w]
        if words:
            return "substring of a longer word (LIKE vs word tokens)", f"{term} in {words[0]}"
        lone = _lone_cjk_char(term)
        if lone:
            at = next((t for t in texts if term in t), "")
            around = at[at.find(term) : at.find(term) + len(term) + 2] if at else term
            return (
                f"1-char CJK run '{lone}' at a term edge only matches a 1-char run",
                f"{around}…",
            )
        return "unexplained (index should match)", f"{term} in article {article_id}"
    return "unexplained (every term matches alone)", f"article {article_id}"


# ── one backend ──────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class BackendReport:
    name: str
    articles: int = 0
    load_s: float = 0.0
    index_s: float = 0.0
    analyze_s: float = 0.0
    size_before: int = 0
    size: int = 0
    size_parts: dict[str, int] = field(default_factory=dict)
    results: list[QueryResult] = field(default_factory=list)
    valid: bool = True
    problems: list[str] = field(default_factory=list)


def run_backend(
    name: str, url: str, corpus: Corpus, queries: list[tuple[str, str]] | None, args: Any,
    workdir: Path,
) -> tuple[BackendReport, list[tuple[str, str]]]:  # fmt: skip
    report = BackendReport(name)
    postgres = name == "postgresql"
    if postgres:
        log(f"{name}: dropping and recreating schema {args.postgres_schema} of {url}")
        reset_postgres(url, args.postgres_schema)
    db = Database(url)
    if postgres:
        use_schema(db.engine, args.postgres_schema)
    try:
        upgrade_to_head(db.engine)
        log(f"{name}: generating and loading {corpus.count:,} articles")
        report.load_s = load(db, corpus, args.batch)
        sqlite_path = workdir / "bench.sqlite3"
        if postgres:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")
            report.size_before, _ = postgres_size(db)
        else:
            report.size_before, _ = sqlite_size(db, sqlite_path)
        log(f"{name}: building the search index (reindex, batches of {REINDEX_BATCH})")
        report.index_s = build_index(db)
        if postgres:
            start = time.perf_counter()
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")
            report.analyze_s = time.perf_counter() - start
            report.size, report.size_parts = postgres_size(db)
        else:
            report.size, report.size_parts = sqlite_size(db, sqlite_path)
        counts = count_rows(db)
        report.articles = counts["articles"]
        if any(v != corpus.count for v in counts.values()):
            report.valid = False
            report.problems.append(f"row counts {counts} != {corpus.count}")
        if queries is None:
            queries = build_queries(corpus, args.queries, args.seed)
        report.results = measure_queries(Backend(db), queries, corpus, report, args.repeat)
    finally:
        db.dispose()
    return report, queries


def measure_queries(
    backend: Backend, queries: list[tuple[str, str]], corpus: Corpus, report: BackendReport,
    repeat: int = 1,
) -> list[QueryResult]:  # fmt: skip
    name = report.name
    results = [QueryResult(cls, q) for cls, q in queries]
    log(f"{name}: search, first pass ({len(results)} queries)")
    for r in results:
        _, r.first_ms = timed(partial(backend.search, r.text))
    # On a shared machine one pass is noisy: each query's time is its median over the passes.
    passes: list[list[float]] = [[] for _ in results]
    for n in range(1, repeat + 1):
        log(f"{name}: search, timed pass {n}/{repeat}")
        for r, times in zip(results, passes, strict=True):
            page, elapsed = timed(partial(backend.search, r.text))
            times.append(elapsed)
            r.hits10 = [h.article_id for h in page.hits]
            r.stories_total = page.total
    for r, times in zip(results, passes, strict=True):
        r.search_ms = percentile(times, 0.5)
    log(f"{name}: timing the parts of each search")
    with Session(backend.db.engine) as session:
        for r in results:
            backend.parts(session, r)
    log(f"{name}: naive scan ({len(results)} queries)")
    story_of = corpus.stats.story_of
    with Session(backend.db.engine) as session:
        for n, r in enumerate(results, start=1):
            scanned, r.scan_ms = timed(partial(backend.scan, session, r.text))
            r.scan_matches = len(scanned)
            if n % 25 == 0:
                log(f"  scanned {n}/{len(results)}")
            if not scanned:
                continue
            indexed = backend.index_ids(session, r.text)
            r.agree = len(scanned & indexed)
            r.index_only = len(indexed - scanned)
            stories10 = {story_of[a] for a in r.hits10}
            missed10 = [a for a in scanned if story_of[a] not in stories10]
            r.found10 = len(scanned) - len(missed10)
            missed_big: list[int] = []
            if 10 < len(scanned) <= CANDIDATES:
                page = backend.search(r.text, BIG_LIMIT)
                stories = {story_of[h.article_id] for h in page.hits}
                missed_big = [a for a in scanned if story_of[a] not in stories]
                r.found_big = len(scanned) - len(missed_big)
            missed = missed10 if len(scanned) <= 10 else missed_big
            oldest_ranked = (
                sorted(indexed, reverse=True)[WINDOW - 1] if WINDOW and len(indexed) > WINDOW else 0
            )
            for a in sorted(set(missed) | (scanned - indexed))[:200]:
                if a in indexed and a < oldest_ranked:
                    reason = f"matched, but older than the newest {WINDOW:,} matches (WINDOW)"
                    example = f"index has {len(indexed):,} matches"
                elif a in indexed:
                    cut = "top 10" if len(scanned) <= 10 else f"{CANDIDATES} candidates"
                    reason = f"matched, but ranked outside the {cut}"
                    example = f"index has {len(indexed):,} matches"
                else:
                    reason, example = miss_reason(backend, session, a, r.text)
                r.reasons[reason] += 1
                if len(scanned) <= 10 and reason.startswith("substring of a longer word"):
                    r.substring10 += 1
                if example not in r.examples and len(r.examples) < 3:
                    r.examples.append(example)
    return results


# ── reporting ────────────────────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class RunSummary:
    p50: float
    p95: float
    pmax: float
    first_p95: float
    scan_p50: float
    scan_p95: float
    ratio_p50: float
    ratio_total: float
    recall10: float
    recall10_queries: int
    recall10_matches: int
    recall10_perfect: int
    recall10_words: float  # the same, not counting LIKE matches inside longer words
    recall_big: float
    recall_big_queries: int
    agreement: float
    agreement_queries: int
    index_only: int
    zero_scan: int


def summarise(results: list[QueryResult]) -> RunSummary:
    searched = [r.search_ms for r in results]
    scans = [r.scan_ms for r in results]
    small = [r for r in results if 1 <= r.scan_matches <= 10]
    big = [r for r in results if 10 < r.scan_matches <= CANDIDATES]
    any_scan = [r for r in results if r.scan_matches]
    small_matches = sum(r.scan_matches for r in small)
    big_matches = sum(r.scan_matches for r in big)
    all_matches = sum(r.scan_matches for r in any_scan)
    p50 = percentile(searched, 0.5)
    return RunSummary(
        p50=p50,
        p95=percentile(searched, 0.95),
        pmax=max(searched, default=0.0),
        first_p95=percentile([r.first_ms for r in results], 0.95),
        scan_p50=percentile(scans, 0.5),
        scan_p95=percentile(scans, 0.95),
        ratio_p50=percentile(scans, 0.5) / p50 if p50 else 0.0,
        ratio_total=sum(scans) / sum(searched) if sum(searched) else 0.0,
        recall10=sum(r.found10 for r in small) / small_matches if small_matches else 1.0,
        recall10_queries=len(small),
        recall10_matches=small_matches,
        recall10_perfect=sum(1 for r in small if r.found10 == r.scan_matches),
        recall10_words=(
            sum(r.found10 for r in small) / (small_matches - sum(r.substring10 for r in small))
            if small_matches > sum(r.substring10 for r in small)
            else 1.0
        ),
        recall_big=sum(r.found_big for r in big) / big_matches if big_matches else 1.0,
        recall_big_queries=len(big),
        agreement=sum(r.agree for r in any_scan) / all_matches if all_matches else 1.0,
        agreement_queries=len(any_scan),
        index_only=sum(r.index_only for r in results),
        zero_scan=sum(1 for r in results if not r.scan_matches),
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _width(value: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in value)


def table(rows: list[list[str]], header: list[str]) -> str:
    """Left-aligned columns; CJK characters count as two columns."""
    widths = [max(_width(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [c + " " * (w - _width(c)) for c, w in zip(map(str, cells), widths, strict=True)]
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def metric_rows(report: BackendReport, s: RunSummary) -> list[list[str]]:
    target_p95 = TARGET_P95_MS[report.name]

    def check(ok: bool) -> str:
        return verdict(ok)

    size = fmt_bytes(report.size)
    growth = fmt_bytes(report.size - report.size_before)
    rate = report.articles / report.index_s if report.index_s else 0
    return [
        ["articles (indexed)", f"{report.articles:,}", "", ""],
        ["generate + bulk load (not index)", f"{report.load_s:.1f} s", "", ""],
        ["index build time (reindex)", f"{report.index_s:.1f} s ({rate:,.0f} articles/s)", "", ""],
        ["DB size", f"{size} (index adds {growth})", "", ""],
        ["indexed p50 / p95 / max", f"{fmt_ms(s.p50)} / {fmt_ms(s.p95)} / {fmt_ms(s.pmax)} ms",
         f"p95 ≤ {target_p95:.0f} ms", check(s.p95 <= target_p95)],
        ["indexed p95, first (cold) pass", f"{fmt_ms(s.first_p95)} ms", "", ""],
        ["naive scan p50 / p95", f"{fmt_ms(s.scan_p50)} / {fmt_ms(s.scan_p95)} ms", "", ""],
        ["ratio scan/indexed, p50", f"{s.ratio_p50:,.0f}×", f"≥ {TARGET_SPEEDUP:.0f}×",
         check(s.ratio_p50 >= TARGET_SPEEDUP)],
        ["ratio scan/indexed, total", f"{s.ratio_total:,.0f}×", f"≥ {TARGET_SPEEDUP:.0f}×",
         check(s.ratio_total >= TARGET_SPEEDUP)],
        ["recall, scan ≤ 10 matches (top 10)",
         f"{s.recall10:.3f} ({s.recall10_queries} queries, {s.recall10_matches} matches, "
         f"{s.recall10_perfect} complete)", f"≥ {TARGET_RECALL}",
         check(s.recall10 >= TARGET_RECALL)],
        ["  same, word matches only",
         f"{s.recall10_words:.3f} (not counting LIKE hits inside longer words)", "", ""],
        [f"recall, 10 < scan ≤ {CANDIDATES} (limit {BIG_LIMIT})",
         f"{s.recall_big:.3f} ({s.recall_big_queries} queries)", "", ""],
        ["agreement, all matches (no limit)",
         f"{s.agreement:.3f} of scan matches also in the index ({s.agreement_queries} queries)",
         "", ""],
        ["index-only matches (not in scan)", f"{s.index_only:,}", "", ""],
        ["queries with no scan match", f"{s.zero_scan}", "", ""],
    ]  # fmt: skip


def print_backend(report: BackendReport, s: RunSummary) -> None:
    print(f"\n=== {report.name} ===")
    print(table(metric_rows(report, s), ["metric", "value", "target", "result"]))
    if report.size_parts:
        parts = ", ".join(f"{k.strip()} {fmt_bytes(v)}" for k, v in report.size_parts.items())
        print(f"size parts: {parts}")
    if report.analyze_s:
        print(f"(VACUUM ANALYZE after the build, not in the build time: {report.analyze_s:.1f} s)")

    window = f"the newest {WINDOW:,}" if WINDOW else "all"
    print(
        "\nper query class (timed pass, p50 unless noted, ms). sql = the candidate query as\n"
        f"query.py sends it; window = ranking {window} matches only (no joins); rank all =\n"
        f"ranking every match (ORDER BY relevance LIMIT {CANDIDATES}, no joins); py rank = "
        "query._rank;\npy hits = query._hit for the 10 hits (snippets)"
    )
    rows = []
    classes = list(dict.fromkeys(r.cls for r in report.results))

    def p50(values: list[float]) -> str:
        return fmt_ms(percentile(values, 0.5))

    for cls in classes:
        rs = [r for r in report.results if r.cls == cls]
        rows.append(
            [
                cls, str(len(rs)), p50([r.search_ms for r in rs]),
                fmt_ms(percentile([r.search_ms for r in rs], 0.95)),
                fmt_ms(max(r.search_ms for r in rs)), p50([r.sql_ms for r in rs]),
                p50([r.sql_sub_ms for r in rs]), p50([r.rank_ms for r in rs]),
                p50([r.py_rank_ms for r in rs]), p50([r.py_hits_ms for r in rs]),
                f"{percentile([r.index_matches for r in rs], 0.5):,.0f}",
                p50([r.scan_ms for r in rs]),
            ]
        )  # fmt: skip
    print(table(rows, ["class", "n", "search", "p95", "max", "sql", "window", "rank all",
                       "py rank", "py hits", "matches", "scan"]))  # fmt: skip

    print(
        "\nslowest 12 queries (ms): -body = candidate SQL without body_text; all = fetch every "
        "matching id (rank all / all ids: what the window avoids)"
    )
    slow = sorted(report.results, key=lambda r: -r.search_ms)[:12]
    rows = [
        [
            r.text, r.cls, f"{r.index_matches:,}", fmt_ms(r.search_ms), fmt_ms(r.sql_ms),
            fmt_ms(r.sql_nobody_ms), fmt_ms(r.sql_sub_ms), fmt_ms(r.rank_ms), fmt_ms(r.match_ms),
            fmt_ms(r.py_rank_ms), fmt_ms(r.py_hits_ms),
        ]
        for r in slow
    ]  # fmt: skip
    print(table(rows, ["query", "class", "matches", "search", "sql", "-body", "window",
                       "rank all", "all ids", "py rank", "py hits"]))  # fmt: skip

    small = [r for r in report.results if 1 <= r.scan_matches <= 10 and r.found10 < r.scan_matches]
    print(f"\nrecall misses where the scan has ≤ 10 matches ({len(small)} queries; stories = "
          "what search() reported as total)")  # fmt: skip
    rows = [
        [r.text, r.cls, str(r.scan_matches), str(r.found10), f"{r.index_matches:,}",
         f"{r.stories_total:,}", "; ".join(f"{k} ×{v}" for k, v in r.reasons.most_common(2)),
         ", ".join(r.examples)]
        for r in small
    ]  # fmt: skip
    if rows:
        print(table(rows, ["query", "class", "scan", "found", "index", "stories", "why", "e.g."]))

    misses = [r for r in report.results if r.reasons and r not in small]
    misses.sort(key=lambda r: -sum(r.reasons.values()))
    print(f"\nother queries where the scan found articles the index did not ({len(misses)}; "
          "top 12 by count)")  # fmt: skip
    rows = []
    for r in misses[:12]:
        reasons = "; ".join(f"{k} ×{v}" for k, v in r.reasons.most_common(2))
        rows.append([r.text, f"{r.scan_matches:,}", f"{r.index_matches:,}", reasons,
                     ", ".join(r.examples)])  # fmt: skip
    if rows:
        print(table(rows, ["query", "scan", "index", "why", "e.g."]))


def print_side_by_side(reports: list[tuple[BackendReport, RunSummary]]) -> None:
    print("\n=== side by side ===")
    names = [r.name for r, _ in reports]
    metric_sets = [metric_rows(r, s) for r, s in reports]
    rows = []
    for i, first in enumerate(metric_sets[0]):
        row = [first[0]]
        for rows_of in metric_sets:
            value, result = rows_of[i][1], rows_of[i][3].split(" ")[0]
            row.append(f"{value} {result}".strip())
        rows.append(row)
    print(table(rows, ["metric", *names]))


def explain() -> None:
    print(
        "\nnotes:\n"
        "- recall: the index collapses near-duplicate stories (same story_id) to one hit, so a\n"
        "  scan match counts as found when any article of its story is among the hits.\n"
        f"- search() ranks at most {CANDIDATES} candidate rows (query.CANDIDATES), so the larger\n"
        f"  limit ({BIG_LIMIT}) can only be checked for queries with ≤ {CANDIDATES} scan matches;\n"
        "  'agreement' compares the full match sets instead (index MATCH / @@ without a limit).\n"
        + (
            f"- only the newest {WINDOW:,} matches (query.WINDOW) are ranked at all: for a term\n"
            "  in most articles that is the last few days; older matches are never shown.\n"
            if WINDOW
            else ""
        )
        + "- the scan reads title, body, title_ja, overview and keywords; the index also has the\n"
        "  summary points and why_important, NFKC folding (ＡＩ = AI) and, for one character, the\n"
        "  chars column: 'index-only' matches are expected and are not errors.\n"
        "- the scan is substring search; the index matches stemmed Latin words whole: LIKE\n"
        "  '%ai%' also finds 'said', 'again', 'Taiwan'; 'GPT-4' finds 'GPT-4o' (the index: with\n"
        "  GPT-4*); 'agent' finds 'agents' in both, but only the index finds 'run' for 'running'.\n"
        "- keywords is a JSON column written with json.dumps (ASCII escapes), so the scan can\n"
        "  never match a Japanese keyword there; the index reads the decoded list."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Search benchmark: ainews full-text search vs a naive LIKE scan. WARNING: with the "
            "postgresql backend it runs DROP SCHEMA public CASCADE / CREATE SCHEMA public (or "
            "the --postgres-schema given) in the database of --postgres-url (default: the "
            "'test' database), destroying its data."
        )
    )
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--backend", choices=("sqlite", "postgresql", "both"), default="both",
        help="default both (PostgreSQL: --postgres-schema of --postgres-url is dropped)",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-url", default=os.environ.get("AINEWS_BENCH_POSTGRES_URL", DEFAULT_PG_URL),
        help=f"default {DEFAULT_PG_URL}; its schema (--postgres-schema) is DROPPED",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-schema", default="public",
        help="schema to DROP … CASCADE, recreate and use (default public; another name, e.g. "
        "ainews_bench, keeps the bench and the PostgreSQL tests, which reset public, apart)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=20_251_124)
    parser.add_argument("--batch", type=int, default=2000, help="rows per insert batch")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="timed passes; each query's time is its median over them (default 1)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite file)")
    args = parser.parse_args(argv)
    if args.articles < 100 or args.queries < 10:
        parser.error("need at least 100 articles and 10 queries")

    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    corpus = Corpus(args.articles, args.seed, anchor)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="ainews-search-bench-"))
    reports: list[tuple[BackendReport, RunSummary]] = []
    queries: list[tuple[str, str]] | None = None
    invalid: list[str] = []
    try:
        for name in backends:
            url = (
                f"sqlite:///{workdir / 'bench.sqlite3'}" if name == "sqlite" else args.postgres_url
            )
            try:
                report, queries = run_backend(name, url, corpus, queries, args, workdir)
            except Exception as exc:  # an unreachable database or a failing query
                invalid.append(f"{name}: {type(exc).__name__}: {exc}")
                log(invalid[-1])
                continue
            if not report.valid:
                invalid.extend(f"{name}: {p}" for p in report.problems)
            reports.append((report, summarise(report.results)))
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    stats = corpus.stats
    print(f"search benchmark: {args.articles:,} articles, {args.queries} queries, "
          f"seed {args.seed}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")  # fmt: skip
    if stats.story_of:
        n = args.articles
        print(f"corpus: {stats.japanese / n:.0%} Japanese, {stats.duplicates:,} near-duplicates "
              f"({len(set(stats.story_of[1:])):,} stories), {stats.full_width:,} with full-width "
              f"ＡＩ, body avg {stats.body_bytes / n:,.0f} bytes, "
              f"{len(stats.tail_counts):,} rare names in use")  # fmt: skip
    if queries:
        mix = Counter(cls for cls, _ in queries)
        print("queries: " + ", ".join(f"{cls} {n}" for cls, n in mix.items()))
    for report, s in reports:
        print_backend(report, s)
    if len(reports) > 1:
        print_side_by_side(reports)
    explain()
    if invalid:
        print("\nINVALID RUN:\n  " + "\n  ".join(invalid))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
