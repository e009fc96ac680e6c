"""The worker's web port serves our pages and none of Faust's built-in ones (:mod:`app.web`)."""
from __future__ import annotations

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.web import builtin_pages_off

BUILTIN_PREFIXES = ("/table", "/router", "/graph", "/assignment", "/performance")


def make_app(name: str, **kwargs) -> faust.App:
    """A Faust app (in-memory broker) with a ``/metrics`` page of its own, as the worker has."""
    app = faust.App(name, broker="memory://", store="memory://", **kwargs)

    @app.page("/metrics")
    async def metrics_page(web, request):  # noqa: ANN001 - Faust view signature
        return web.bytes(b"ours 1\n", content_type="text/plain; version=0.0.4")

    return app


def served_paths(app: faust.App) -> set[str]:
    """The paths the app's web server routes, built as ``faust worker`` builds them before listening."""
    app.web.init_server()
    paths = set()
    for resource in app.web.web_app.router.resources():
        info = resource.get_info()
        paths.add(info.get("path") or info.get("formatter") or info.get("prefix"))
    return paths


def builtin(paths: set[str]) -> set[str]:
    return {p for p in paths if p.startswith(BUILTIN_PREFIXES)}


def test_faust_serves_its_pages_by_default():
    """Without the settings the built-in pages are there (what the other tests turn off)."""
    paths = served_paths(make_app("web-default", debug=True))
    assert {"/table/", "/table/{name}/{key}/", "/router/", "/router/{name}/{key}/", "/graph/", "/assignment/"} <= paths
    assert "/metrics" in paths


def test_builtin_pages_off_leaves_only_our_pages_and_the_index():
    paths = served_paths(make_app("web-off", debug=True, **builtin_pages_off()))
    assert builtin(paths) == set()
    assert paths == {"/", "/metrics"}


@pytest.mark.asyncio
async def test_builtin_pages_answer_not_found_over_http():
    app = make_app("web-http", debug=True, **builtin_pages_off())
    app.web.init_server()
    async with TestClient(TestServer(app.web.web_app)) as client:
        metrics = await client.get("/metrics")
        assert metrics.status == 200 and await metrics.read() == b"ours 1\n"
        index = await client.get("/")
        assert index.status == 200 and await index.json() == {"status": "OK"}  # Faust's production index
        for path in ("/table/", "/table/pending/some-key/", "/router/", "/router/topics", "/graph/", "/assignment/",
                     "/performance/"):
            assert (await client.get(path)).status == 404, path


def test_faust_environment_still_wins(monkeypatch):
    """An operator can turn a page back on deliberately (Faust's environment variables win)."""
    monkeypatch.setenv("APP_WEB_TABLES_ENABLED", "true")
    paths = served_paths(make_app("web-env", **builtin_pages_off()))
    assert builtin(paths) == {"/table/", "/table/{name}/", "/table/{name}/{key}/"}
