"""The failed-login throttle: a ``limits`` moving window in the rate limit's storage.

The unit tests run it on ``limits``' memory storage with a controlled clock; the API tests
check that it counts where the general rate limit counts (memory by default, Redis when
RATE_LIMIT_STORAGE_URI points at one), not in the embedded database.
"""

from __future__ import annotations

import types
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from limits.storage import MemoryStorage, storage_from_string

from app.auth.throttle import LoginThrottle, parse_rate_limit
from app.core.errors import RateLimited
from app.main import create_app
from tests.conftest import make_settings
from tests.margin.support import ADMIN_PASSWORD, JWT_SECRET, DbProbe


# --- parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "amount", "seconds"),
    [
        ("5/minute", 5, 60),
        ("5 per minute", 5, 60),
        ("10/5 minutes", 10, 300),
        ("3/hour", 3, 3600),
        ("100/day", 100, 86400),
    ],
)
def test_parse_rate_limit(text: str, amount: int, seconds: int) -> None:
    limit = parse_rate_limit(text)
    assert (limit.amount, limit.get_expiry()) == (amount, seconds)


@pytest.mark.parametrize("text", ["", "five/minute", "5/fortnight", "0/minute", "5"])
def test_parse_rate_limit_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_rate_limit(text)


# --- the window -------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A clock shared by the throttle and ``limits``' memory storage."""
    fake = FakeClock()
    monkeypatch.setattr("limits.storage.memory.time", types.SimpleNamespace(time=fake))
    return fake


@pytest.fixture
def throttle(clock: FakeClock) -> LoginThrottle:
    return LoginThrottle(MemoryStorage(), parse_rate_limit("3/minute"), clock=clock)


def test_throttle_window(throttle: LoginThrottle, clock: FakeClock) -> None:
    for _ in range(3):
        throttle.check("asha", "1.2.3.4")
        throttle.failure("asha", "1.2.3.4")
        clock.now += 10
    with pytest.raises(RateLimited) as info:
        throttle.check("asha", "1.2.3.4")
    # The first failure (30 s ago) leaves the 60 s window in 30 s.
    assert info.value.details["retry_after_seconds"] == 30
    assert info.value.headers == {"Retry-After": "30"}
    throttle.check("asha", "5.6.7.8")  # another IP is not affected
    throttle.check("other", "1.2.3.4")  # nor another account from the same IP
    clock.now += 30
    throttle.check("asha", "1.2.3.4")  # the window moved on


def test_username_is_case_insensitive(throttle: LoginThrottle) -> None:
    for name in ("Asha", "ASHA", "asha"):
        throttle.failure(name, "1.2.3.4")
    with pytest.raises(RateLimited):
        throttle.check("aShA", "1.2.3.4")


def test_success_clears_the_account_key(throttle: LoginThrottle) -> None:
    for _ in range(2):
        throttle.failure("asha", "1.2.3.4")
    throttle.success("asha", "1.2.3.4")
    for _ in range(2):
        throttle.failure("asha", "1.2.3.4")
    throttle.check("asha", "1.2.3.4")


def test_ip_key_stops_stuffing(throttle: LoginThrottle) -> None:
    for i in range(12):  # 4 x 3 failures across 12 usernames
        throttle.check(f"user{i}", "1.2.3.4")
        throttle.failure(f"user{i}", "1.2.3.4")
    with pytest.raises(RateLimited):
        throttle.check("fresh-name", "1.2.3.4")
    throttle.check("fresh-name", "9.9.9.9")


def test_throttles_on_one_storage_share_their_counts(clock: FakeClock) -> None:
    storage = MemoryStorage()
    one = LoginThrottle(storage, parse_rate_limit("2/minute"), clock=clock)
    two = LoginThrottle(storage, parse_rate_limit("2/minute"), clock=clock)
    one.failure("asha", "1.2.3.4")
    two.failure("asha", "1.2.3.4")
    with pytest.raises(RateLimited):
        one.check("asha", "1.2.3.4")


def test_a_huge_username_is_stored_under_a_short_key() -> None:
    storage = MemoryStorage()
    throttle = LoginThrottle(storage, parse_rate_limit("3/minute"))
    throttle.failure("x" * 900_000, "1.2.3.4")
    keys = list(storage.events)
    assert keys
    assert max(len(key) for key in keys) < 200, [len(key) for key in keys]


@pytest.mark.services
def test_throttles_on_one_redis_share_their_counts(redis_url: str) -> None:
    name = f"asha-{uuid.uuid4().hex[:8]}"
    one = LoginThrottle(storage_from_string(redis_url), parse_rate_limit("2/minute"))
    two = LoginThrottle(storage_from_string(redis_url), parse_rate_limit("2/minute"))
    one.failure(name, "1.2.3.4")
    two.failure(name, "1.2.3.4")
    with pytest.raises(RateLimited) as info:
        one.check(name, "1.2.3.4")
    assert 1 <= info.value.details["retry_after_seconds"] <= 60
    two.success(name, "1.2.3.4")
    one.check(name, "1.2.3.4")


# --- through the app ----------------------------------------------------------------------------
def _settings(data_dir: Path, **overrides: object) -> object:
    return make_settings(
        data_dir,
        jwt_secret=JWT_SECRET,
        admin_username="root-admin",
        admin_password=ADMIN_PASSWORD,
        login_rate_limit="2/minute",
        **overrides,
    )


def _attempt(client: TestClient, username: str, **headers: str) -> int:
    response = client.post(
        "/auth/token", data={"username": username, "password": "wrong"}, headers=headers
    )
    return response.status_code


@pytest.mark.usefixtures("fast_hashing")
def test_failed_logins_are_counted_in_the_rate_limit_storage_not_the_database(
    data_dir: Path,
) -> None:
    settings = _settings(data_dir)
    with TestClient(create_app(settings)) as client:  # type: ignore[arg-type]
        assert [_attempt(client, "nobody") for _ in range(3)] == [401, 401, 429]
    probe = DbProbe(data_dir / "store.sqlite3")
    try:
        assert probe.scalar("SELECT COUNT(*) FROM login_failures") == 0
    finally:
        probe.close()


@pytest.mark.usefixtures("fast_hashing")
def test_throttle_counts_under_the_address_the_rate_limit_resolves(data_dir: Path) -> None:
    # Behind a trusted proxy both count under the forwarded client; a spoofed header from an
    # untrusted peer changes nothing for either.
    settings = _settings(data_dir, trusted_proxies=["10.0.0.0/8"])
    app = create_app(settings)  # type: ignore[arg-type]
    with TestClient(app, client=("10.1.2.3", 40000)) as proxied:
        first = {"X-Forwarded-For": "198.51.100.1"}
        assert [_attempt(proxied, "asha", **first) for _ in range(3)] == [401, 401, 429]
        assert _attempt(proxied, "asha", **{"X-Forwarded-For": "198.51.100.2"}) == 401
    with TestClient(create_app(settings), client=("203.0.113.9", 40000)) as direct:  # type: ignore[arg-type]
        spoofed = [
            _attempt(direct, "asha", **{"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(3)
        ]
    assert spoofed == [401, 401, 429]


@pytest.mark.services
@pytest.mark.usefixtures("fast_hashing")
def test_throttle_is_shared_by_workers_through_redis(data_dir: Path, redis_url: str) -> None:
    # Two app instances with their own embedded databases stand in for two hosts (or workers)
    # sharing one Redis: failures on one throttle the other.
    other_dir = data_dir.parent / "worker2"
    other_dir.mkdir()
    (other_dir / "store.sqlite3").write_bytes((data_dir / "store.sqlite3").read_bytes())
    name = f"asha-{uuid.uuid4().hex[:8]}"
    with (
        TestClient(create_app(_settings(data_dir, rate_limit_storage_uri=redis_url))) as one,  # type: ignore[arg-type]
        TestClient(create_app(_settings(other_dir, rate_limit_storage_uri=redis_url))) as two,  # type: ignore[arg-type]
    ):
        assert _attempt(one, name) == 401
        assert _attempt(two, name) == 401
        assert _attempt(one, name) == 429
        assert _attempt(two, name) == 429
