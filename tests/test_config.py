"""Settings: documented, defaults sensible, bad values named."""

from __future__ import annotations

import re
import shutil
from datetime import time
from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, Settings, SettingsError, load_settings


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (PROJECT_ROOT / ".env.example").read_text(), re.M))
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert documented == aliases


def test_env_example_copied_to_dotenv_loads_with_the_defaults(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / ".env.example", tmp_path / ".env")
    settings = load_settings()  # conftest has moved us into tmp_path
    assert settings.openai_api_key is None and settings.openai_base_url is None
    assert settings.tiktoken_cache_dir is None
    assert settings.briefing_time == time(8, 30)
    assert settings.timezone == "Asia/Tokyo" and settings.language == "ja"
    assert settings.briefing_size == 20
    assert not settings.llm_enabled


def test_defaults_without_any_configuration() -> None:
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:///")
    assert settings.sources_file.is_file() and settings.categories_file.is_file()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AINEWS_BRIEFING_TIME", "8.30", "expected HH:MM"),
        ("AINEWS_TIMEZONE", "Tokyo", "unknown time zone"),
        ("AINEWS_LANGUAGE", "fr", "'ja' or 'en'"),
        ("AINEWS_DAILY_TOKEN_BUDGET", "-1", "greater than or equal to 0"),
        ("AINEWS_POLL_INTERVAL", "0", "greater than or equal to 0.05"),
        ("DATABASE_URL", "oracle://x", "expected sqlite"),
    ],
)
def test_bad_values_stop_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{variable}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_api_key_never_appears_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    settings = load_settings()
    assert settings.llm_enabled
    assert "sk-very-secret-value" not in repr(settings)
    assert "sk-very-secret-value" not in str(settings.model_dump())


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, re.M))
    assert rows == {field.alias for field in Settings.model_fields.values()}
