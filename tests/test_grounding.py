"""`jobs.grounding`: numbers and Latin-script names in a summary must come from its article."""

from __future__ import annotations

import pytest

from jobs.grounding import GENERIC_TERMS, grounding_problems, names_in, numbers_in

ARTICLE = (
    "Nimbus Labs、新モデルNimbus-2を発表\n"
    "Nimbus Labsは新しい言語モデルNimbus-2を発表した。パラメータ数は120億で、"
    "前世代より30%高速。価格は1,000トークンあたり0.50ドル。GPT-4oとの比較も公開した。"
    "評価にはMMLUを使い、正答率は88.4だった。"
)


# -- numbers_in ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("売上は120億円", {"120"}),
        ("売上は１２０億円", {"120"}),  # full-width digits are the same number
        ("1,000件", {"1000"}),
        ("1000件", {"1000"}),
        ("１，０００件", {"1000"}),
        ("12,345,678", {"12345678"}),
        ("0.50ドル", {"0.5"}),
        ("3.0倍と3倍", {"3"}),
        ("88.4%", {"88.4"}),
        ("2025年4月1日", {"2025", "4", "1"}),
        ("Nimbus-2とGPT-4o", {"2", "4"}),
        ("数字なし", set()),
    ],
)
def test_numbers_in_normalises_width_separators_and_trailing_zeros(
    text: str, numbers: set[str]
) -> None:
    assert numbers_in(text) == numbers


# -- names_in -----------------------------------------------------------------------------------


def test_names_in_finds_capitalised_and_numbered_latin_names_lowercased() -> None:
    text = (
        "Nimbus LabsのNimbus-2はGPT-4oやｇｐｔ-５、HZ-2と比べ、startupやapiにも触れる。v2.1対応。"
    )
    assert names_in(text) == {"nimbus", "labs", "nimbus-2", "gpt-4o", "gpt-5", "hz-2", "v2.1"}


def test_names_in_ignores_lowercase_words_and_single_letters() -> None:
    assert names_in("the startup uses python and a X to build x") == set()


# -- grounding_problems -------------------------------------------------------------------------


def test_a_summary_that_only_restates_the_article_is_grounded() -> None:
    summary = [
        "Nimbus Labs、Nimbus-2を発表",
        "パラメータ数は１２０億。",  # full-width in the summary, half-width in the article
        "価格は1000トークンあたり0.5ドル。",  # separators and trailing zeros do not matter
        "GPT-4oとの比較で30%高速。",
        "MMLUの正答率は88.4。",
    ]
    assert grounding_problems(summary, ARTICLE) == []


def test_full_width_in_the_article_matches_half_width_in_the_summary() -> None:
    assert grounding_problems(["売上は120億円"], "売上は１２０億円に達した") == []
    assert grounding_problems(["1,000社が導入"], "導入企業は1000社") == []


def test_invented_number_is_reported() -> None:
    problems = grounding_problems(["売上は999億円に達した。", "120億パラメータ"], ARTICLE)
    assert problems == ["numbers not in the article: 999"]


def test_changed_decimal_is_an_invented_number() -> None:
    assert grounding_problems(["正答率は88.5"], ARTICLE) == ["numbers not in the article: 88.5"]


def test_a_conversion_to_the_same_value_is_grounded() -> None:
    # The article says 120億: the same quantity written another way is still that fact.
    assert grounding_problems(["パラメータ数は12,000,000,000"], ARTICLE) == []
    assert (
        grounding_problems(["調達額は20億ドル", "4月1日に公開"], "raised $2 billion on April 1")
        == []
    )
    assert grounding_problems(["3億1000万ドルを調達"], "It raised $310 million.") == []


def test_a_scaled_number_must_match_by_value() -> None:
    # 120万 is not 120億, even though "120" appears in the article.
    assert grounding_problems(["パラメータ数は120万"], ARTICLE) == [
        "numbers not in the article: 120"
    ]
    assert grounding_problems(["2兆円"], "revenue of 2 billion yen") == [
        "numbers not in the article: 2"
    ]


def test_name_from_another_article_is_reported() -> None:
    other = "Zephyra Roboticsは50億円を調達した。"
    summary = ["Nimbus-2はZephyra Roboticsとの提携も発表。"]
    assert grounding_problems(summary, other + ARTICLE) == []
    assert grounding_problems(summary, ARTICLE) == ["names not in the article: robotics, zephyra"]


def test_other_model_version_is_reported() -> None:
    assert grounding_problems(["GPT-5との比較"], ARTICLE) == [
        "numbers not in the article: 5",
        "names not in the article: gpt-5",
    ]


@pytest.mark.parametrize(
    ("name", "article"),
    [
        ("GPT-4", "GPT-4oとの比較"),  # another model, whose name merely starts the same
        ("Meta", "metadata の扱いを改善した"),
        ("Nimbus", "CumulonimbusNet を公開"),
    ],
)
def test_a_name_must_occur_as_a_whole_word(name: str, article: str) -> None:
    assert grounding_problems([f"{name}が発表"], article) == [
        f"names not in the article: {name.lower()}"
    ]


@pytest.mark.parametrize(
    "article",
    ["Nimbusは発表した", "Nimbus-2を公開", "Nimbus's model", "(Nimbus)", "by NIMBUS."],
)
def test_a_name_next_to_punctuation_or_japanese_is_found(article: str) -> None:
    assert grounding_problems(["Nimbusの新モデル"], article + "。") == []


def test_numbers_and_names_are_both_reported() -> None:
    problems = grounding_problems(["Zephyraは999億円を調達"], ARTICLE)
    assert problems == ["numbers not in the article: 999", "names not in the article: zephyra"]


def test_generic_terms_are_allowed_without_the_article_spelling_them() -> None:
    assert {"ai", "llm", "gpu", "api", "ceo", "eu", "gpt"} <= GENERIC_TERMS
    summary = ["AIとLLMの普及でGPU需要が増え、CEOはEUの規制やAPI提供にも言及した。GPT系と競合。"]
    assert grounding_problems(summary, "短い記事。") == []


def test_name_matching_ignores_case_and_width() -> None:
    assert grounding_problems(["ＮＩＭＢＵＳ ＬＡＢＳのnimbus-2"], ARTICLE) == []


def test_lowercase_words_are_not_names() -> None:
    assert grounding_problems(["the startup shipped a model"], ARTICLE) == []


def test_empty_summary_is_grounded() -> None:
    assert grounding_problems([], ARTICLE) == []
