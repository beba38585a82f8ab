"""/docs and /redoc work with no network (assets from the fastapi-offline package, not a CDN), and the server names
its model by its directory."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from rewardlab.models.reward_model import RewardModel  # noqa: E402
from rewardlab.serve.app import create_app  # noqa: E402
from rewardlab.serve.config import ServeConfig  # noqa: E402
from rewardlab.serve.docs import MISSING_PAGE, assets_dir  # noqa: E402

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture(scope="module")
def client(tmp_path_factory, tiny_llama):
    d = tmp_path_factory.mktemp("docs") / "run" / "model"
    RewardModel.from_backbone(tiny_llama, max_length=32).save(d)
    with TestClient(create_app(ServeConfig(model=str(d), token="t"))) as c:
        c.model_dir = str(d)
        yield c


def test_docs_pages_load_their_assets_from_the_server(client):
    if assets_dir() is None:
        pytest.skip("fastapi-offline is not installed (the serve extra has it)")
    for page, assets in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        html = client.get(page, headers=AUTH).text
        assert "cdn." not in html and "fonts.googleapis" not in html  # nothing from elsewhere
        for asset in assets:
            assert f"/docs-assets/{asset}" in html
            r = client.get(f"/docs-assets/{asset}", headers=AUTH)  # with --token, every path but /health needs it
            assert r.status_code == 200 and len(r.content) > 10_000
    assert client.get("/openapi.json", headers=AUTH).json()["paths"]["/v1/score"]
    assert client.get("/docs").status_code == 401  # the token guards the docs too


def test_docs_without_the_assets_say_how_to_get_them(monkeypatch, tiny_llama, tmp_path):
    import rewardlab.serve.docs as docs

    monkeypatch.setattr(docs, "assets_dir", lambda: None)
    d = tmp_path / "m"
    RewardModel.from_backbone(tiny_llama, max_length=32).save(d)
    with TestClient(create_app(ServeConfig(model=str(d)))) as c:
        text = c.get("/docs").text
    assert (
        "fastapi-offline" in text
        and "/openapi.json" in text
        and text == MISSING_PAGE.format(title="rewardlab reward server — API docs")
    )


def test_health_and_answers_name_the_model_directory(client):
    assert client.get("/health").json()["model"] == os.path.normpath(client.model_dir)
    body = client.post("/v1/score", json={"prompt": "hi", "responses": ["a"]}, headers=AUTH).json()
    assert body["model"].endswith(os.path.join("run", "model"))


def test_serving_docs_name_every_request_field_of_the_schema(client):
    """docs/serving.md's endpoint table names every field of /v1/score's and /get_reward's request schemas
    (`unsafe` included), so a new field cannot go undocumented."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text()
    schemas = client.get("/openapi.json", headers=AUTH).json()["components"]["schemas"]
    for name in ("ScoreRequest", "OpenRLHFRequest"):
        fields = set(schemas[name]["properties"])
        assert "unsafe" in fields
        assert [f for f in fields if f'"{f}"' not in text] == [], name
