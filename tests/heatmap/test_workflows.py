"""The GitHub workflows: valid, least-privilege, current actions; schedules, setup, and their
shell steps run for real here."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.heatmap.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


#: Oldest major version accepted per action (the current majors when this was written).
MIN_ACTION_MAJOR = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/setup-node": 5,
}
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def _uses(workflow: dict[Any, Any]) -> list[str]:
    """Every ``uses:`` of the workflow (steps and reusable-workflow jobs)."""
    found: list[str] = []
    for job in workflow.get("jobs", {}).values():
        if "uses" in job:
            found.append(str(job["uses"]))
        found += [str(step["uses"]) for step in job.get("steps", []) if "uses" in step]
    return found


def test_workflow_files_exist() -> None:
    names = {path.name for path in WORKFLOW_FILES}
    assert {"ci.yml", "weekly_heatmap.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_is_valid_yaml_with_least_privilege(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())  # GitHub ignores a file that does not parse
    assert isinstance(workflow, dict)
    assert workflow.get("jobs"), "a workflow needs jobs"
    assert _triggers(workflow), "a workflow needs triggers (on:)"
    # A top-level permissions block: the GITHUB_TOKEN gets only what is listed.
    assert "permissions" in workflow
    permissions = workflow["permissions"]
    assert permissions == {} or permissions == {"contents": "read"}, permissions
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, f"job {name} has no timeout"
        for step in job.get("steps", []):
            assert ("run" in step) != ("uses" in step), step


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_actions_are_pinned_to_current_majors(path: Path) -> None:
    for uses in _uses(yaml.safe_load(path.read_text())):
        action, _, ref = uses.partition("@")
        assert ref, f"{uses}: pin a version"
        if re.fullmatch(r"[0-9a-f]{40}", ref):
            continue  # a full commit sha is pinned too
        match = re.fullmatch(r"v(\d+)(\.\d+){0,2}", ref)
        assert match, f"{uses}: pin a major version tag (vN) or a commit sha"
        assert int(match.group(1)) >= MIN_ACTION_MAJOR.get(action, 1), f"{uses} is outdated"


def test_ci_runs_make_test_on_the_committed_subset() -> None:
    workflow = _load("ci.yml")
    on = _triggers(workflow)
    assert {"push", "pull_request"} <= set(on)
    job = workflow["jobs"]["test"]
    # GitHub has no ../shared/data: the tests read tests/data/shared_subset, and the full_data
    # tests are reported as skipped with the reason (not silently), every other skip fails.
    assert job["env"]["TEST_DATA"] == "subset"
    assert job["env"]["CI"] == "true"
    runs = [step.get("run", "") for step in job["steps"]]
    assert "make test" in runs  # the same command as .ci/run
    assert "make lint" in runs
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    uses = _uses(workflow)
    # PostgREST for the Supabase tests comes from the npm registry: Node is set up.
    assert any(u.startswith("actions/setup-node@") for u in uses)
    assert "npm pack" in (REPO_ROOT / "scripts" / "setup_test_services.sh").read_text()
    setup = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-py"))
    assert setup["with"]["python-version"] == "3.11"
    assert "addopts" in (REPO_ROOT / "pyproject.toml").read_text()
    assert "-ra" in (REPO_ROOT / "pyproject.toml").read_text()  # skip reasons in the summary


def _load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    on: dict[str, Any] = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    return on


def _step(workflow: dict[Any, Any], job: str, name: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return next(s for s in steps if s.get("name") == name)


def test_weekly_heatmap_workflow_setup() -> None:
    workflow = _load("weekly_heatmap.yml")
    on = _triggers(workflow)
    assert "workflow_dispatch" in on
    (cron,) = [entry["cron"] for entry in on["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert minute.isdigit()
    assert hour.isdigit()
    assert (day, month) == ("*", "*")
    assert weekday.isdigit()  # once a week
    assert workflow["env"]["SUPABASE_URL"] == "${{ secrets.SUPABASE_URL }}"
    assert workflow["env"]["SUPABASE_KEY"] == "${{ secrets.SUPABASE_KEY }}"
    # Shards read the price store of record (the API's data version) and fetch nothing.
    assert workflow["env"]["MARKET_STORE_URL"] == "${{ secrets.MARKET_STORE_URL }}"
    assert workflow["env"]["MARKET_DATA_PROVIDER"] == "offline"
    assert "refresh" not in on["workflow_dispatch"].get("inputs", {})
    # The shards run as a matrix of 1..SHARDS; publishing waits for all of them.
    shards = workflow["jobs"]["shards"]
    assert shards["strategy"]["matrix"]["shard"] == list(
        range(1, int(workflow["env"]["SHARDS"]) + 1)
    )
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "shards"
    upload = next(s for s in shards["steps"] if str(s.get("uses", "")).startswith("actions/upload"))
    download = next(
        s for s in publish["steps"] if str(s.get("uses", "")).startswith("actions/download")
    )
    assert upload["with"]["name"] == "heatmap-shard-${{ matrix.shard }}"
    assert upload["with"]["if-no-files-found"] == "error"
    assert download["with"]["pattern"] == "heatmap-shard-*"
    assert download["with"]["merge-multiple"] is True
    for name in ("shards", "publish"):
        job = workflow["jobs"][name]
        setup = next(
            s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")
        )
        assert setup["with"]["python-version"] == "3.11"
        assert setup["with"]["cache"] == "pip"
        install = _step(workflow, name, "Install dependencies")
        assert "pip install -r requirements.txt" in install["run"]


def _fake_python(folder: Path, code: int) -> Path:
    """A ``python`` on PATH that records its arguments and exits with ``code``."""
    folder.mkdir(exist_ok=True)
    shim = folder / "python"
    shim.write_text(f'#!/bin/sh\necho "$@" > "{folder}/args"\nexit {code}\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return folder


def _run_step(tmp_path: Path, job: str, name: str, code: int, **env: str) -> tuple[Any, list[str]]:
    script = _step(_load("weekly_heatmap.yml"), job, name)["run"]
    shims = _fake_python(tmp_path / "bin", code)
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        env={"PATH": f"{shims}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    return done, (shims / "args").read_text().split()


@pytest.mark.parametrize(
    ("code", "job_fails", "annotation"),
    [
        (0, False, "heatmap shard 2/4 complete"),
        (1, False, "::warning::"),
        (2, True, "::error::heatmap shard refused"),
        (3, True, "::error::heatmap shard failed"),
        (5, True, "::error::heatmap shard failed (exit 5)"),
    ],
)
def test_weekly_heatmap_shard_step_maps_exit_codes(
    tmp_path: Path, code: int, job_fails: bool, annotation: str
) -> None:
    done, args = _run_step(
        tmp_path,
        "shards",
        "Compute the heatmap shard",
        code,
        AS_OF="2024-06-21",
        SHARD="2",
        SHARDS="4",
    )
    assert done.returncode == (code if job_fails else 0)
    assert annotation in done.stdout
    assert args == [
        "scripts/compute_heatmap.py",
        "--mode",
        "both",
        "--require-supabase",
        "--shard",
        "2/4",
        "--shard-dir",
        "shards",
        "--as-of",
        "2024-06-21",
    ]
    # The arguments the workflow passes are ones the CLI accepts.
    parsed = _load_cli().build_parser().parse_args(args[1:])
    assert parsed.mode == "both"
    assert not parsed.refresh_data
    assert (parsed.shard.index, parsed.shard.count) == (2, 4)
    assert parsed.require_supabase


@pytest.mark.parametrize(
    ("code", "job_fails", "annotation"),
    [
        (0, False, "heatmap complete"),
        (1, False, "::warning::"),
        (2, True, "::error::heatmap run refused"),
        (3, True, "nothing published"),
        (4, True, "holds the lock"),
        (5, True, "::error::heatmap run failed (exit 5)"),
    ],
)
def test_weekly_heatmap_publish_step_maps_exit_codes(
    tmp_path: Path, code: int, job_fails: bool, annotation: str
) -> None:
    done, args = _run_step(tmp_path, "publish", "Publish the heatmap", code)
    assert done.returncode == (code if job_fails else 0)
    assert annotation in done.stdout
    assert args == ["scripts/compute_heatmap.py", "--merge-shards", "shards", "--require-supabase"]
    parsed = _load_cli().build_parser().parse_args(args[1:])
    assert str(parsed.merge_shards) == "shards"


def _load_cli() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli", REPO_ROOT / "scripts/compute_heatmap.py")
    assert spec is not None
    assert spec.loader is not None
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli


def test_the_weekly_heatmap_has_one_scheduler() -> None:
    # The GitHub workflow is the only weekly precompute: no Render cron job runs the same script
    # (it would compute every heatmap twice and race for the lock), and the web service's
    # in-app cron stays off.
    blueprint = yaml.safe_load((REPO_ROOT / "render.yaml").read_text())
    assert [s["type"] for s in blueprint["services"]] == ["web"]
    commands = [str(service.get("startCommand", "")) for service in blueprint["services"]]
    assert not [c for c in commands if "compute_heatmap" in c]
    (web,) = blueprint["services"]
    env = {e["key"]: e for e in web["envVars"] if "key" in e}
    assert env["HEATMAP_CRON"]["value"] == ""
    schedulers = [
        path.name
        for path in WORKFLOW_FILES
        if "compute_heatmap.py" in path.read_text() and "schedule" in _triggers(_load(path.name))
    ]
    assert schedulers == ["weekly_heatmap.yml"]
    workflow = _load("weekly_heatmap.yml")
    workflow_args = _step(workflow, "shards", "Compute the heatmap shard")["run"]
    assert "args=(--mode both --require-supabase --shard" in workflow_args


def test_no_keep_alive_workflow() -> None:
    # The Render plan is starter, which does not sleep: nothing needs pinging to stay awake.
    blueprint = yaml.safe_load((REPO_ROOT / "render.yaml").read_text())
    assert {s["plan"] for s in blueprint["services"]} == {"starter"}
    for path in WORKFLOW_FILES:
        assert "/health" not in path.read_text(), f"{path.name} pings the service"
