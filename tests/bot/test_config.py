import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SINGSONG_ variable or .env of the developer's leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("SINGSONG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_setup() -> None:
    settings = Settings()
    assert settings.web_host == "127.0.0.1" and settings.web_port == 8080
    assert settings.telegram_token is None and settings.discord_token is None
    assert settings.redis_url is None
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_database_url.endswith("data/singsong.db")


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SINGSONG_WEB_PORT=9000\nSINGSONG_DISCORD_TOKEN=from-file\n")
    monkeypatch.setenv("SINGSONG_WEB_PORT", "9100")  # the environment wins over .env
    monkeypatch.setenv("SINGSONG_ADMIN_IDS", "telegram:42, discord:7")
    monkeypatch.setenv("SINGSONG_DATABASE_URL", "postgresql+asyncpg://127.0.0.1/test")
    settings = Settings()
    assert settings.web_port == 9100
    assert settings.discord_token is not None
    assert settings.discord_token.get_secret_value() == "from-file"
    assert settings.is_admin("telegram", "42") and settings.is_admin("discord", "7")
    assert not settings.is_admin("telegram", "7")
    assert settings.effective_database_url == "postgresql+asyncpg://127.0.0.1/test"


def test_tokens_never_show_in_text(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setenv("SINGSONG_TELEGRAM_TOKEN", "123456:very-secret")
    settings = Settings()
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings %s %r", settings, settings)
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings)
    assert "very-secret" not in caplog.text


@pytest.mark.parametrize("value", ["42", "slack:1", "telegram:"])
def test_bad_admin_ids_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SINGSONG_ADMIN_IDS", value)
    with pytest.raises(ValidationError, match="platform:user_id"):
        Settings()
