"""Settings: the only place that reads the environment.

One `Settings` instance is built at start-up (`load_settings`) and passed down; tests build their
own. A bad value stops start-up with one line that names the variable (`SettingsError`).
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobs.spend import DEFAULT_PRICES, Price

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the checkout: tests and benches only
# The bundled defaults, a real directory in the checkout and in an installed (unpacked) wheel.
DEFAULTS_DIR = Path(str(files("bot.defaults")))
DEFAULT_VAR_DIR = Path("var")


class SettingsError(Exception):
    """A configuration problem, worded for an operator: one line naming the variable."""


class Settings(BaseSettings):
    """Every knob of ainews. Field names map to the environment variables in `.env.example`."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_VAR_DIR / 'ainews.sqlite3'}", alias="DATABASE_URL"
    )
    var_dir: Path = Field(default=DEFAULT_VAR_DIR, alias="AINEWS_VAR_DIR")

    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    model: str = Field(default="gpt-4o-mini", alias="AINEWS_MODEL")
    llm_timeout: float = Field(default=60.0, gt=0, alias="AINEWS_LLM_TIMEOUT")
    llm_max_retries: int = Field(default=4, ge=0, le=10, alias="AINEWS_LLM_MAX_RETRIES")

    language: Literal["ja", "en"] = Field(default="ja", alias="AINEWS_LANGUAGE")
    timezone: str = Field(default="Asia/Tokyo", alias="AINEWS_TIMEZONE")
    briefing_time: time = Field(default=time(8, 30), alias="AINEWS_BRIEFING_TIME")
    briefing_size: int = Field(default=20, ge=1, le=100, alias="AINEWS_BRIEFING_SIZE")
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = Field(
        default="mon", alias="AINEWS_WEEKLY_DAY"
    )
    weekly_time: time = Field(default=time(9, 0), alias="AINEWS_WEEKLY_TIME")
    weekly_size: int = Field(default=25, ge=1, le=99, alias="AINEWS_WEEKLY_SIZE")

    # Minutes; a fraction is allowed (0.25: every 15 s), for tests and very busy feeds.
    poll_interval: float = Field(default=30, ge=0.05, le=24 * 60, alias="AINEWS_POLL_INTERVAL")
    poll_concurrency: int = Field(default=100, ge=1, le=1000, alias="AINEWS_POLL_CONCURRENCY")
    poll_per_host: int = Field(default=4, ge=1, le=100, alias="AINEWS_POLL_PER_HOST")
    fetch_timeout: float = Field(default=20.0, gt=0, alias="AINEWS_FETCH_TIMEOUT")
    max_feed_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, alias="AINEWS_MAX_FEED_BYTES")
    parse_workers: int = Field(default=0, ge=0, le=64, alias="AINEWS_PARSE_WORKERS")
    fulltext_per_poll: int = Field(default=20, ge=0, le=1000, alias="AINEWS_FULLTEXT_PER_POLL")
    user_agent: str = Field(
        default="ainews/0.1 (+https://github.com/ainews-bot/ainews)", alias="AINEWS_USER_AGENT"
    )

    allow_private_sources: bool = Field(default=False, alias="AINEWS_ALLOW_PRIVATE_SOURCES")

    max_article_tokens: int = Field(default=3000, ge=100, alias="AINEWS_MAX_ARTICLE_TOKENS")
    max_output_tokens: int = Field(default=800, ge=100, alias="AINEWS_MAX_OUTPUT_TOKENS")
    daily_token_budget: int = Field(default=500_000, ge=0, alias="AINEWS_DAILY_TOKEN_BUDGET")

    shutdown_grace: float = Field(default=10.0, ge=0, le=600, alias="AINEWS_SHUTDOWN_GRACE")
    # Article bodies are emptied after retention_days; articles with their summaries are
    # deleted after summary_retention_days, which must be at least as long.
    retention_days: int = Field(default=365, ge=1, le=36500, alias="AINEWS_RETENTION_DAYS")
    summary_retention_days: int = Field(
        default=1095, ge=1, le=36500, alias="AINEWS_SUMMARY_RETENTION_DAYS"
    )

    sources_file: Path = Field(default=DEFAULTS_DIR / "sources.toml", alias="AINEWS_SOURCES_FILE")
    categories_file: Path = Field(
        default=DEFAULTS_DIR / "categories.toml", alias="AINEWS_CATEGORIES_FILE"
    )
    tiktoken_cache_dir: Path | None = Field(default=None, alias="TIKTOKEN_CACHE_DIR")
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_channel: str | None = Field(default=None, alias="AINEWS_SLACK_CHANNEL")
    slack_api_url: str | None = Field(default=None, alias="SLACK_API_URL")
    slack_post_interval: float = Field(default=1.0, ge=0, le=60, alias="AINEWS_SLACK_POST_INTERVAL")
    http_host: str = Field(default="0.0.0.0", alias="AINEWS_HTTP_HOST")
    http_port: int = Field(default=3000, ge=0, le=65535, alias="AINEWS_HTTP_PORT")
    admin_users: str = Field(default="", alias="AINEWS_ADMIN_USERS")
    briefing_lease: float = Field(default=120.0, ge=0, alias="AINEWS_BRIEFING_LEASE")
    poster_lease: float = Field(default=60.0, ge=1, le=3600, alias="AINEWS_POSTER_LEASE")
    dm_schedule: Literal["immediate", "daily"] = Field(
        default="immediate", alias="AINEWS_DM_SCHEDULE"
    )
    dm_interval: int = Field(default=15, ge=1, le=24 * 60, alias="AINEWS_DM_INTERVAL")
    ask_limit: int = Field(default=10, ge=0, le=10_000, alias="AINEWS_ASK_LIMIT")
    ask_window: int = Field(default=60, ge=1, le=7 * 24 * 60, alias="AINEWS_ASK_WINDOW")
    publish_retry: float = Field(default=60.0, gt=0, le=3600, alias="AINEWS_PUBLISH_RETRY")

    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_channel_id: int | None = Field(default=None, gt=0, alias="AINEWS_DISCORD_CHANNEL_ID")
    discord_guild_id: int | None = Field(default=None, gt=0, alias="AINEWS_DISCORD_GUILD_ID")
    discord_api_url: str | None = Field(default=None, alias="AINEWS_DISCORD_API_URL")
    discord_gateway_url: str | None = Field(default=None, alias="AINEWS_DISCORD_GATEWAY_URL")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="AINEWS_LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(default="text", alias="AINEWS_LOG_FORMAT")
    # `ainews run`'s /healthz, /readyz and /metrics (bot/health.py) on AINEWS_HTTP_HOST; unset:
    # not served; 0: any free port (logged).
    health_port: int | None = Field(default=None, ge=0, le=65535, alias="AINEWS_HEALTH_PORT")

    # Spend: prices for `ainews stats` (JSON, merged over jobs.spend.DEFAULT_PRICES), and the
    # budget fallbacks of earlier days re-summarised per summarize run.
    model_prices: Annotated[dict[str, Price], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES), alias="AINEWS_MODEL_PRICES"
    )
    resummarize_per_run: int = Field(
        default=20, ge=0, le=10_000, alias="AINEWS_RESUMMARIZE_PER_RUN"
    )
    disable_after_failures: int = Field(
        default=10, ge=0, le=10_000, alias="AINEWS_DISABLE_AFTER_FAILURES"
    )
    disable_after: timedelta | None = Field(default=timedelta(days=3), alias="AINEWS_DISABLE_AFTER")

    @field_validator("briefing_time", "weekly_time", mode="before")
    @classmethod
    def _parse_hhmm(cls, value: object) -> object:
        if isinstance(value, str):
            match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
            if not match:
                raise ValueError(f"expected HH:MM (24-hour), got {value!r}")
            return time(int(match.group(1)), int(match.group(2)))
        return value

    @field_validator("model_prices", mode="before")
    @classmethod
    def _prices_json(cls, value: object) -> object:
        """`{"model": {"input": USD, "output": USD}}` per 1M tokens; the defaults stay for
        every model it does not name."""
        if isinstance(value, str):
            import json

            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected JSON, {exc.msg} at character {exc.pos}") from None
        if not isinstance(value, dict):
            raise ValueError('expected a JSON object {"model": {"input": 0.15, "output": 0.6}}')
        prices: dict[str, object] = dict(DEFAULT_PRICES)
        for model, price in value.items():
            if isinstance(price, Price):
                prices[model] = price
                continue
            if not isinstance(price, dict) or set(price) != {"input", "output"}:
                raise ValueError(f'{model}: expected {{"input": USD, "output": USD}} per 1M tokens')
            if not all(isinstance(v, int | float) and v >= 0 for v in price.values()):
                raise ValueError(f"{model}: prices must be numbers ≥ 0 (USD per 1M tokens)")
            prices[model] = price
        return prices

    @field_validator("disable_after", mode="before")
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        """`3d`, `36h`, `90m`; `0` (or empty) turns the duration rule off."""
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("", "0"):
                return None
            match = re.fullmatch(r"(\d+)\s*([dhm])", text)
            if not match:
                raise ValueError(f"expected a duration like 3d, 36h or 90m (0: off), got {value!r}")
            unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
            return timedelta(**{unit: int(match.group(1))})
        return value

    @field_validator("weekly_day", mode="before")
    @classmethod
    def _weekday(cls, value: object) -> object:
        """`mon` … `sun`; a full English name or any case works too (`Monday`, `MON`)."""
        if isinstance(value, str):
            return value.strip().lower()[:3]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST/DB")
        return value

    @field_validator(
        "openai_base_url",
        "openai_api_key",
        "tiktoken_cache_dir",
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_channel",
        "slack_api_url",
        "discord_token",
        "discord_channel_id",
        "discord_guild_id",
        "discord_api_url",
        "discord_gateway_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("sources_file", "categories_file", mode="before")
    @classmethod
    def _empty_is_bundled(cls, value: object, info: ValidationInfo) -> object:
        """Empty, as `.env.example` has it, means the file shipped in `bot/defaults/`."""
        if value == "" and info.field_name is not None:
            return cls.model_fields[info.field_name].default
        return value

    @model_validator(mode="after")
    def _summaries_outlive_bodies(self) -> Settings:
        if self.summary_retention_days < self.retention_days:
            raise ValueError(
                "AINEWS_SUMMARY_RETENTION_DAYS: must be at least AINEWS_RETENTION_DAYS "
                f"({self.retention_days}): summaries are kept longer than bodies"
            )
        return self

    @model_validator(mode="after")
    def _consistent_slack(self) -> Settings:
        """Slack settings that cannot work together, named in one line each."""
        token = self.slack_bot_token.get_secret_value() if self.slack_bot_token else None
        app_token = self.slack_app_token.get_secret_value() if self.slack_app_token else None
        if token is None:
            if app_token or self.slack_signing_secret or self.slack_channel:
                raise ValueError("SLACK_BOT_TOKEN: required when other Slack settings are set")
            return self
        if not token.startswith("xoxb-"):
            raise ValueError("SLACK_BOT_TOKEN: expected a bot token starting with xoxb-")
        if app_token is not None and not app_token.startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN: expected an app-level token starting with xapp-")
        if app_token is None and self.slack_signing_secret is None:
            raise ValueError(
                "SLACK_SIGNING_SECRET: required in HTTP mode (set it, or SLACK_APP_TOKEN for "
                "Socket Mode)"
            )
        if not self.slack_channel:
            raise ValueError(
                "AINEWS_SLACK_CHANNEL: required with SLACK_BOT_TOKEN (the briefing channel)"
            )
        return self

    @model_validator(mode="after")
    def _consistent_discord(self) -> Settings:
        token = self.discord_token.get_secret_value().strip() if self.discord_token else None
        if token is None:
            for name, value in (
                ("AINEWS_DISCORD_CHANNEL_ID", self.discord_channel_id),
                ("AINEWS_DISCORD_GUILD_ID", self.discord_guild_id),
            ):
                if value is not None:
                    raise ValueError(f"DISCORD_TOKEN: required when {name} is set")
            return self
        if not token or any(c.isspace() for c in token) or token.lower().startswith("bot "):
            raise ValueError("DISCORD_TOKEN: expected the bot token itself (no 'Bot ' prefix)")
        if self.discord_channel_id is None:
            raise ValueError(
                "AINEWS_DISCORD_CHANNEL_ID: required with DISCORD_TOKEN (the briefing channel's "
                "numeric ID)"
            )
        for name, url, schemes in (
            ("AINEWS_DISCORD_API_URL", self.discord_api_url, ("http://", "https://")),
            ("AINEWS_DISCORD_GATEWAY_URL", self.discord_gateway_url, ("ws://", "wss://")),
        ):
            if url is not None and not url.startswith(schemes):
                raise ValueError(f"{name}: expected a URL starting with {' or '.join(schemes)}")
        return self

    @field_validator("health_port", mode="before")
    @classmethod
    def _empty_port_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _health_port_is_free(self) -> Settings:
        """Slack's HTTP listener and the health endpoints are two servers: one port each."""
        slack_http = self.slack_enabled and self.slack_app_token is None
        if slack_http and self.health_port and self.health_port == self.http_port:
            raise ValueError(
                f"AINEWS_HEALTH_PORT: {self.health_port} is AINEWS_HTTP_PORT, where Slack's "
                "HTTP mode listens; choose another port"
            )
        return self

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def admins(self) -> frozenset[str]:
        return frozenset(u.strip() for u in self.admin_users.split(",") if u.strip())

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None

    @property
    def briefings_dir(self) -> Path:
        return self.var_dir / "briefings"

    @property
    def reports_dir(self) -> Path:
        """Where every weekly report is saved, `2026-W48.md`."""
        return self.var_dir / "reports"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment and `.env`, or raise `SettingsError` in one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    loc = error.get("loc") or ()
    if not loc:  # a check across several variables: the message names the variable
        return message
    name = str(loc[0])
    field = Settings.model_fields.get(name)
    variable = field.alias if field is not None and field.alias else name.upper()
    return f"{variable}: {message}"
