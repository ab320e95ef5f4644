"""The local service helpers themselves: Redis, the gateway, PostgREST restarts, key minting."""

from __future__ import annotations

import hashlib

import httpx
import jwt
import pytest
import redis

from tests.services.local import POSTGREST_SHA256, SupabaseStack, find_postgrest

pytestmark = pytest.mark.services


def test_redis_url_serves_a_real_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
        client.set("k", "v", ex=10)
        assert client.get("k") == b"v"
        assert redis_url.startswith("redis://127.0.0.1:")
    finally:
        client.close()


def test_postgrest_binary_is_the_pinned_one(supabase_stack: SupabaseStack) -> None:
    digest = hashlib.sha256(supabase_stack.postgrest.binary.read_bytes()).hexdigest()
    assert digest == POSTGREST_SHA256
    assert find_postgrest() == supabase_stack.postgrest.binary


def test_keys_carry_the_supabase_roles(supabase_stack: SupabaseStack) -> None:
    for key, role in (
        (supabase_stack.service_key, "service_role"),
        (supabase_stack.anon_key, "anon"),
    ):
        claims = jwt.decode(key, supabase_stack.jwt_secret, algorithms=["HS256"])
        assert claims["role"] == role


def test_gateway_serves_only_rest_v1(clean_supabase: SupabaseStack) -> None:
    key = clean_supabase.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    ok = httpx.get(f"{clean_supabase.url}/rest/v1/job_leases", headers=headers)
    assert ok.status_code == 200
    assert ok.json() == []
    missing = httpx.get(f"{clean_supabase.url}/job_leases", headers=headers)
    assert missing.status_code == 404


def test_postgrest_can_be_stopped_and_restarted(clean_supabase: SupabaseStack) -> None:
    url = f"{clean_supabase.url}/rest/v1/job_leases"
    key = clean_supabase.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    clean_supabase.stop_postgrest()
    assert httpx.get(url, headers=headers).status_code == 502
    clean_supabase.start_postgrest()
    assert httpx.get(url, headers=headers).status_code == 200
