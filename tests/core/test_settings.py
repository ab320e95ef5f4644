"""Settings: .env.example is complete and loads as it is."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting() -> None:
    text = (REPO / ".env.example").read_text()
    listed = {m.lower() for m in re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE)}
    assert set(Settings.model_fields) <= listed, set(Settings.model_fields) - listed


def test_copied_env_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The file's own instruction is "copy to .env": that must start the service as documented.
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.supabase_url is None
    assert settings.supabase_enabled is False
    assert settings.margin_sweep_minutes is None
    assert settings.heatmap_cron is None
    assert settings.cors_origins == []
    assert settings.rate_limit == "10/minute"
    assert settings.cache_ttl_hours == 24


def test_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == ["10.0.0.0/8"]


@pytest.mark.parametrize("url", ["not-a-url", "ftp://x.supabase.co", "https://"])
def test_malformed_supabase_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ValidationError, match="SUPABASE_URL must be the project URL"):
        Settings(_env_file=None, supabase_url=url)  # type: ignore[call-arg]


def test_supabase_url_is_normalised() -> None:
    settings = Settings(_env_file=None, supabase_url="https://abc.supabase.co/")  # type: ignore[call-arg]
    assert settings.supabase_url == "https://abc.supabase.co"
