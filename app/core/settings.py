"""Service configuration: one pydantic-settings model, read from the environment and ``.env``.

Nothing here is built at import time: :func:`get_settings` builds and caches it, and tests
override the FastAPI dependency (or pass a :class:`Settings` to ``create_app``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT_DIR = Path(__file__).resolve().parents[1] / "market" / "data"
#: Calendar days after which data is stale (DATA_STALE_AFTER_DAYS): Friday's close stays fresh
#: through a long weekend (Tuesday is 4 days later); a missed weekday refresh shows within two.
DEFAULT_STALE_AFTER_DAYS = 4


class Settings(BaseSettings):
    """Every environment variable the service reads (see ``.env.example``)."""

    # An empty value (``SUPABASE_URL=`` as in .env.example) means "not set".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_parse_none_str=""
    )

    # --- server -----------------------------------------------------------------------
    port: int = Field(8000, description="Port uvicorn listens on (Render sets PORT).")
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool = Field(False, description="Emit one JSON object per log line.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS."
    )
    max_body_bytes: int = Field(1_000_000, description="Largest accepted request body.")
    http_cache_max_age_s: int = Field(
        60, ge=0, le=86_400, description="Cache-Control max-age of anonymous GET answers."
    )
    compute_concurrency: int = Field(
        2, ge=1, le=64, description="Compute requests (index maths, analytics) running at once."
    )
    compute_wait_s: float = Field(
        10.0, ge=0, le=300, description="Seconds a compute request waits for a slot, then 503."
    )

    # --- rate limiting ------------------------------------------------------------------
    rate_limit: str = Field("10/minute", description="Default per-client limit (slowapi).")
    rate_limit_enabled: bool = True
    rate_limit_storage_uri: str = Field(
        "memory://",
        description="Counters of the rate limit and the login throttle: memory:// or redis://...",
    )
    rate_limit_storage_timeout_s: float = Field(
        0.25,
        gt=0,
        description="Connect and read timeout of one rate-limit storage (Redis) call, seconds; "
        "on a failure the limits count per process in memory until the storage answers.",
    )
    login_rate_limit: str = Field(
        "5/minute",
        description="Failed logins per username+IP before /auth/token refuses (4x per IP alone).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Peers (IPs or CIDRs) whose X-Forwarded-For is honoured; empty = none. "
        "The app alone resolves the client: uvicorn runs with --no-proxy-headers.",
    )

    # --- data -----------------------------------------------------------------------------
    data_dir: Path = Field(REPO_ROOT / "var", description="Where the embedded store lives.")
    snapshot_dir: Path = Field(SNAPSHOT_DIR, description="The bundled real-data snapshot.")
    market_data_provider: Literal["yfinance", "offline"] = Field(
        "yfinance", description="Live provider for delta fetches; offline = store only."
    )
    provider_timeout_s: float = Field(3.0, description="Per-request timeout of the provider.")
    data_stale_after_days: int = Field(
        DEFAULT_STALE_AFTER_DAYS,
        ge=1,
        description="The one staleness rule: data dated more than this many calendar days "
        "before today (India time) is stale, in /health (the data's as-of date, status "
        "degraded) and in /stocks (each price's date).",
    )
    provider_probe_interval_s: float = Field(
        300.0, description="How long a failed reachability probe is trusted."
    )
    provider_batch_size: int = Field(
        50, ge=1, description="Tickers per provider download call (yfinance batch)."
    )

    # --- cache ----------------------------------------------------------------------------
    cache_ttl_hours: float = Field(24.0, gt=0, description="TTL of cached factor betas.")
    factor_cache_max_entries: int = Field(
        2048,
        ge=0,
        description="Bound of the in-process LRU of factor betas for non-canonical windows "
        "(not 126/252/504, which go to the shared cache); 0 = compute those each time.",
    )
    market_store_url: SecretStr | None = Field(
        None,
        description="libpq URI of the shared PostgreSQL price store of record (on Supabase: "
        "the pooler's URL; tables of supabase/migrations/0008_market_store.sql). Unset: the "
        "embedded SQLite store under DATA_DIR (one process).",
    )
    market_store_pool_size: int = Field(
        4, ge=1, le=64, description="Connections of this process to the price store of record."
    )
    supabase_url: str | None = None
    supabase_key: SecretStr | None = None
    supabase_timeout_s: float = Field(
        3.0,
        gt=0,
        description="Timeout of one Supabase request of the heatmap store and the command-line "
        "scripts (bulk writes), seconds.",
    )
    supabase_request_timeout_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Timeout of one Supabase request of the request-path stores (users, "
        "margin data, custom indices, the beta cache), seconds.",
    )
    supabase_cooldown_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Probe interval of the Supabase circuit breakers: after a failure, calls "
        "fail fast (or use the embedded fallback) for this long, then one call probes.",
    )
    supabase_concurrency: int = Field(
        8,
        ge=1,
        le=64,
        description="Supabase calls of users and margin data in flight at once, in their own "
        "worker threads (not the pool every other endpoint uses).",
    )
    supabase_wait_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds a request waits for one of those before 503 database_busy.",
    )

    # --- jobs -----------------------------------------------------------------------------
    heatmap_cron: str | None = Field(None, description="Crontab for the in-app heatmap job.")
    price_refresh_cron: str | None = Field(
        None, description="Crontab for the in-app delta refresh of prices from the provider."
    )
    price_refresh_on_start: bool = Field(
        False, description="Also delta-refresh prices once right after start-up."
    )
    margin_sweep_minutes: float | None = Field(None, description="Margin sweep interval.")
    scheduler_timezone: str = "Asia/Kolkata"

    # --- auth (margin monitoring) ---------------------------------------------------------
    jwt_secret: SecretStr | None = Field(None, description="HS256 secret for access tokens.")
    app_env: Literal["development", "production"] = Field(
        "development",
        description="production: nothing is generated for you (JWT_SECRET must be set); "
        "development: without JWT_SECRET a secret is generated once and kept in DATA_DIR.",
    )
    jwt_expire_minutes: int = 60
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    margin_default_rate: float = Field(0.25, gt=0, le=1)
    margin_requirement_rate: Literal["house", "exchange", "max"] = Field(
        "house",
        description="Requirement rate of margin reports and the sweep: the flat house rate "
        "(MARGIN_DEFAULT_RATE), the exchange rate per symbol (SEBI 2020 VaR + ELM) or the "
        "higher of both; per-symbol overrides win in every case.",
    )

    # --- custom indices -------------------------------------------------------------------
    custom_index_quota_per_user: int = Field(
        20,
        ge=0,
        description="Custom indices one user may own (admins are exempt; the store as a whole "
        "holds at most 200).",
    )

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("supabase_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        # Refuse a malformed URL at start-up with a clear message (on Render the previous
        # deploy keeps serving) rather than failing later inside the Supabase client.
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(
                "SUPABASE_URL must be the project URL, e.g. https://<project>.supabase.co"
            )
        return value.rstrip("/") if value is not None else None

    @property
    def supabase_enabled(self) -> bool:
        """True when both SUPABASE_URL and SUPABASE_KEY are set."""
        return bool(self.supabase_url and self.supabase_key)

    @property
    def store_path(self) -> Path:
        """Path of the embedded SQLite store."""
        return self.data_dir / "store.sqlite3"


@lru_cache
def get_settings() -> Settings:
    """Build the settings once per process."""
    return Settings()
