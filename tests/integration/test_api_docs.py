"""The OpenAPI pages work offline: /docs and /redoc load their scripts, styles and icons from this
server (the pinned fastapi-offline package's copies), never from a CDN, and every one answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from analyzer.config import Settings

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")
ANY_URL = re.compile(r"""https?://[^\s"'<>)]+""")


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    from api.app import create_app

    settings = Settings(
        store_path=tmp_path / "store.duckdb",
        tagger_model=str(tmp_path / "no-tagger"),
        read_public=False,  # the docs stay public even when reads need a key
    )
    with TestClient(create_app(settings)) as c:
        yield c


def asset_urls(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(client: TestClient, page: str) -> None:
    res = client.get(page)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    html = res.text
    # No absolute URL anywhere in the page: no CDN script, no web font, no remote favicon.
    assert ANY_URL.findall(html) == []
    urls = asset_urls(html)
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, f"{page} loads no script"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
    if page == "/docs":
        assert any(u.endswith(".css") for u in urls)
        assert "/openapi.json" in urls
        # Swagger UI's online validator badge would call out to swagger.io.
        assert '"validatorUrl": null' in html


def test_docs_assets_are_real_bundles(client: TestClient) -> None:
    js = client.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 500_000  # the real Swagger UI bundle
    assert "javascript" in js.headers["content-type"]
    css = client.get("/docs/static/swagger-ui.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert client.get("/docs/static/redoc.standalone.js").status_code == 200
    assert client.get("/docs/static/no-such-file.js").status_code == 404
    # Outside /docs the gateway's rules still hold (reads need a key in this configuration).
    assert client.get("/v1/themes").status_code == 401
