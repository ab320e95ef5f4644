"""Swagger UI and ReDoc load without internet: every asset they reference is served by the app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import make_settings

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


def _references(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_asset_of_the_docs_pages_is_served_locally(data_dir: Path, page: str) -> None:
    settings = make_settings(data_dir, rate_limit_enabled=True, rate_limit="3/minute")
    with TestClient(create_app(settings)) as client:
        for _ in range(2):  # loading the docs twice does not spend the API's rate limit
            response = client.get(page)
            assert response.status_code == 200
            references = _references(response.text)
            assert references, "the page references no assets"
            for ref in references:
                assert not ref.startswith(("http://", "https://", "//")), (
                    f"{page} loads {ref} from the internet"
                )
                asset = client.get(ref)
                assert asset.status_code == 200, ref
                assert asset.content
