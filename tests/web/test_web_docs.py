"""`/docs` works offline: Swagger UI comes from a package, served by ShopBot itself."""

from __future__ import annotations

import re

from swagger_ui_bundle import swagger_ui_path
from web_support import Api

from shopbot.web.docs import ASSETS


async def test_the_docs_page_references_nothing_outside(api: Api) -> None:
    page = await api.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.text, re.IGNORECASE), page.text
    assert "validatorUrl" in page.text, "the online validator is off"
    referenced = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(referenced) == sorted(f"/docs/assets/{name}" for name in ASSETS)
    for url in referenced:
        asset = await api.client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(ASSETS[url.rsplit("/", 1)[1]])
        assert asset.content == (swagger_ui_path / url.rsplit("/", 1)[1]).read_bytes(), url
    bundle = await api.client.get("/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    assert re.search(r"'/openapi\.json'", page.text)
    assert (await api.client.get("/openapi.json")).json()["openapi"].startswith("3.1")


async def test_only_the_pages_assets_are_served(api: Api) -> None:
    for path in [
        "/docs/assets/index.html",
        "/docs/assets/..%2F__init__.py",
        "/docs/assets/swagger-ui-bundle.js.map",
        "/redoc",
    ]:
        assert (await api.client.get(path)).status_code == 404, path
    redirect = await api.client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()
