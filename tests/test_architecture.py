"""The house's shape: import contracts hold and the redesign left the public API unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from app.main import create_app
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[1]
BEFORE = REPO / "tests" / "fixtures" / "openapi_before_redesign.json"


def test_import_contracts_hold() -> None:
    """import-linter's layers and independence contracts of pyproject.toml are kept."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout or "broken" not in result.stdout.lower()


#: Schemas the old document named after their module (two models were both called "Betas");
#: the redesign made them one model with a unique name.
RENAMED = {"app__api__factors__Betas": "Betas", "app__api__heatmap__Betas": "Betas"}
DOCUMENTATION_KEYS = ("description", "summary", "examples", "example")
#: Fields added by features after the redesign (schema -> properties), left out of the
#: comparison; everything else must be as it was.
ADDED_SINCE = {
    "DataLabel": ("data_version",),
    "HeatmapResponse": ("data_version",),
    "HeatmapStatus": ("data_version",),
}


#: Query parameters added by features after the redesign ((path, method) -> names).
PARAMETERS_ADDED_SINCE = {("/indices/{name}/history", "get"): ("as_of",)}


def _without_additions(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document["components"]["schemas"]
    for name, fields in ADDED_SINCE.items():
        for field in fields:
            del schemas[name]["properties"][field]
    for (path, method), names in PARAMETERS_ADDED_SINCE.items():
        operation = document["paths"][path][method]
        operation["parameters"] = [p for p in operation["parameters"] if p["name"] not in names]
    return document


def _without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            RENAMED.get(key, key): _without_descriptions(value)
            for key, value in node.items()
            if key not in DOCUMENTATION_KEYS
        }
    if isinstance(node, str) and node.startswith("#/components/schemas/"):
        name = node.rsplit("/", 1)[1]
        return f"#/components/schemas/{RENAMED.get(name, name)}"
    if isinstance(node, list):
        return [_without_descriptions(value) for value in node]
    return node


def test_openapi_paths_and_shapes_unchanged_by_the_redesign(tmp_path: Path) -> None:
    """Every path, operation, parameter and schema is as before the move to domain packages."""
    document = _without_additions(create_app(make_settings(tmp_path)).openapi())
    before = json.loads(BEFORE.read_text())
    assert sorted(document["paths"]) == sorted(before["paths"])
    assert _without_descriptions(document) == _without_descriptions(before)
