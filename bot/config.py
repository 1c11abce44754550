"""Settings from the environment or a `.env` file (prefix SINGSONG_); the only reader of both.

Tokens are SecretStr: they print as '**********' and are never logged.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TELEGRAM_API = "https://api.telegram.org/bot"
TELEGRAM_FILES = "https://api.telegram.org/file/bot"
DISCORD_API = "https://discord.com/api/v10"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SINGSONG_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite "
                                     "in the data dir")
    redis_url: str | None = None
    job_stale_s: float = Field(default=600.0, ge=10.0, description="over Redis: a job running "
                               "this long is given up and run again even though its worker "
                               "still beats (stuck); a worker that died is found by its "
                               "heartbeat within seconds (keep it longer than the longest job)")
    redis_queue: str = Field(default="singsong-jobs", pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
                             description="the Redis list jobs go through (one per deployment "
                             "sharing a Redis)")
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port
    web_token: SecretStr | None = Field(default=None, description="required by the web API "
                                        "when web_host is not this machine's loopback")
    telegram_token: SecretStr | None = None
    telegram_base_url: str = TELEGRAM_API
    telegram_base_file_url: str = TELEGRAM_FILES
    telegram_webhook_url: str | None = Field(default=None, description="public HTTPS URL that "
                                             "reaches POST /telegram/webhook; unset = polling")
    telegram_webhook_secret: SecretStr | None = None
    discord_token: SecretStr | None = None
    discord_api_base: str = DISCORD_API
    discord_album_channel_id: int | None = None
    admin_ids: Annotated[frozenset[str], NoDecode] = frozenset()
    curate_hour: int = Field(default=3, ge=0, le=23, description="UTC hour of the nightly "
                             "curation")
    album_weekday: int = Field(default=0, ge=0, le=6, description="day the weekly album is "
                               "made and posted (0 = Monday)")
    album_hour: int = Field(default=9, ge=0, le=23, description="UTC hour on that day")
    album_size: int = Field(default=20, ge=1, le=100, description="songs in an album at most")
    album_per_person: int = Field(default=2, ge=1, le=20, description="songs of one person "
                                  "in an album at most")

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_admin_ids(cls, value: object) -> object:
        """'telegram:42, discord:7' -> {'telegram:42', 'discord:7'}."""
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("admin_ids")
    @classmethod
    def _check_admin_ids(cls, value: frozenset[str]) -> frozenset[str]:
        for entry in value:
            platform, _, user_id = entry.partition(":")
            if platform not in ("telegram", "discord", "web") or not user_id:
                raise ValueError(f"admin id {entry!r} is not of the form platform:user_id "
                                 "(platform telegram, discord or web)")
        return value

    @cached_property
    def effective_database_url(self) -> str:
        """The configured database, or SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'singsong.db').resolve()}"

    @property
    def web_is_public(self) -> bool:
        """Whether the web chat listens beyond this machine (then it needs web_token)."""
        return self.web_host not in ("127.0.0.1", "localhost", "::1")

    def is_admin(self, platform: str, user_id: str) -> bool:
        return f"{platform}:{user_id}" in self.admin_ids


def load_settings() -> Settings:
    return Settings()
