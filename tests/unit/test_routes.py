"""Routes against a fake model (through a dependency override): shapes, rules and every error."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.card import MISSING_CATEGORY
from app.main import create_app
from app.routes import get_registry
from app.schemas import schema_titles
from app.settings import Settings
from tests.fakes import FakeBundle, FakeRegistry, break_scoring, fake_score, make_card, write_card

ROW = {"views": 4, "seconds": 30.0, "browser": 2, "device": "mobile", "returning": True}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    write_card(tmp_path, make_card("fake"))
    write_card(tmp_path, make_card("plain", catalog=False, users=False))
    return Settings(
        models_dir=tmp_path,
        default_model="fake",
        max_rows=5,
        max_k=3,
        default_k=3,
        max_candidates=6,
        max_body_bytes=2048,
    )


@pytest.fixture
def registry(settings: Settings) -> FakeRegistry:
    fake = FakeRegistry(settings)
    fake.load()
    return fake


@pytest.fixture
def client(settings: Settings, registry: FakeRegistry) -> TestClient:
    app = create_app(settings)
    app.dependency_overrides[get_registry] = lambda: registry
    return TestClient(app)


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()["error"]
    assert body["code"] == code
    return body


# --- /predict -------------------------------------------------------------------------------


def test_predict_returns_probability_label_model_and_version(client: TestClient) -> None:
    response = client.post("/predict", json={"rows": [ROW]})
    assert response.status_code == 200
    body = response.json()
    expected = fake_score(4, math.nan, "mobile")
    assert body["predictions"][0]["probability"] == pytest.approx(expected, abs=1e-6)
    assert body["predictions"][0]["label"] is (expected >= 0.5)
    assert (body["model"], body["version"], body["threshold"]) == ("fake", "v1", 0.5)
    assert response.headers["x-model-name"] == "fake"
    assert response.headers["x-model-version"] == "v1"


def test_a_batch_keeps_its_order(client: TestClient) -> None:
    rows = [{**ROW, "views": v} for v in (0, 9, 2)]
    probabilities = [
        p["probability"] for p in client.post("/predict", json={"rows": rows}).json()["predictions"]
    ]
    assert probabilities == pytest.approx(
        [fake_score(v, math.nan, "mobile") for v in (0, 9, 2)], abs=1e-6
    )


def test_codes_as_numbers_or_strings_reach_the_model_alike(
    client: TestClient, registry: FakeRegistry
) -> None:
    for spelling in (3, 3.0, "3", " 3 ", "3.0"):
        response = client.post("/predict", json={"rows": [{**ROW, "browser": spelling}]})
        assert response.status_code == 200, (spelling, response.text)
        assert registry.last_call()["browser"][0, 0] == "3", spelling
    for bad in (3.5, True, [3]):
        response = client.post("/predict", json={"rows": [{**ROW, "browser": bad}]})
        body = _error(response, 422, "invalid_request")
        assert body["details"][0]["field"] == "rows[0].browser", bad


def test_missing_optional_features_reach_the_graph_as_missing(
    client: TestClient, registry: FakeRegistry
) -> None:
    response = client.post("/predict", json={"rows": [{"device": "mobile", "seconds": None}]})
    assert response.status_code == 200
    feeds = registry.last_call()
    assert math.isnan(feeds["views"][0, 0])
    assert math.isnan(feeds["seconds"][0, 0])
    assert feeds["browser"][0, 0] == MISSING_CATEGORY
    assert math.isnan(feeds["returning"][0, 0])


def test_unknown_category_is_scored_not_rejected(
    client: TestClient, registry: FakeRegistry
) -> None:
    response = client.post("/predict", json={"rows": [{**ROW, "device": "smart fridge"}]})
    assert response.status_code == 200
    assert registry.last_call()["device"][0, 0] == "smart fridge"


def test_another_model_answers_at_its_own_path(client: TestClient) -> None:
    response = client.post("/models/plain/predict", json={"rows": [ROW]})
    assert response.status_code == 200
    assert response.json()["model"] == "plain"


def test_request_id_is_echoed_or_made_up(client: TestClient) -> None:
    given = client.post("/predict", json={"rows": [ROW]}, headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.post("/predict", json={"rows": [ROW]})
    assert len(made.headers["x-request-id"]) == 32
    ids = {client.post("/predict", json={"rows": [ROW]}).headers["x-request-id"] for _ in range(5)}
    assert len(ids | {made.headers["x-request-id"]}) == 6
    hostile = client.post("/predict", json={"rows": [ROW]}, headers={"X-Request-ID": "a\tb c"})
    assert hostile.headers["x-request-id"] != "a\tb c"


def test_small_requests_are_scored_inline_and_large_ones_in_a_worker_thread(
    tmp_path: Path,
) -> None:
    write_card(tmp_path, make_card("fake"))
    settings = Settings(models_dir=tmp_path, inline_rows=2, inline_items=3, max_k=4, default_k=4)
    fake = FakeRegistry(settings)
    fake.load()
    app = create_app(settings)
    app.dependency_overrides[get_registry] = lambda: fake
    client = TestClient(app)
    bundle = fake.bundles["fake"]
    assert isinstance(bundle, FakeBundle)
    client.post("/predict", json={"rows": [ROW]})
    client.post("/predict", json={"rows": [ROW] * 30})  # over 2 rows of 512 bytes
    client.post("/recommend", json={"user_id": "u1", "candidates": ["a", "b"]})
    client.post("/recommend", json={"user_id": "u1"})  # the whole catalogue: 4 items
    # Sent as columns a row takes about a quarter of the bytes: 128 per row instead of 512.
    client.post("/predict", json={"columns": {k: [v] for k, v in ROW.items()}})  # 105 bytes
    twelve = json.dumps({"columns": {k: [v] * 12 for k, v in ROW.items()}})
    assert 256 < len(twelve) < 1024  # over 2 rows of 128 bytes, under 2 of 512
    client.post("/predict", content=twelve, headers={"content-type": "application/json"})
    small_predict, big_predict, small_rank, big_rank, one_column, twelve_columns = bundle.threads
    assert not small_predict.startswith("AnyIO worker")
    assert big_predict.startswith("AnyIO worker")
    assert not small_rank.startswith("AnyIO worker")
    assert big_rank.startswith("AnyIO worker")
    assert not one_column.startswith("AnyIO worker")
    assert twelve_columns.startswith("AnyIO worker")


# --- bad input: each a 4xx with a JSON body naming the problem ------------------------------


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"views": "four"}, "views", "valid number"),
        ({"views": True}, "views", "valid number"),
        ({"returning": "yes"}, "returning", "valid boolean"),
        ({"browser": 2.5}, "browser", "string or an integer code"),
        ({"device": 7}, "device", "valid string"),
        ({"views": -1}, "views", "greater than or equal to 0"),
        ({"seconds": 1e6}, "seconds", "less than or equal to 86400"),
        ({"views": 2.5}, "views", "multiple of 1"),
    ],
)
def test_wrong_types_and_out_of_range_values_are_named(
    client: TestClient, row: dict[str, Any], field: str, problem: str
) -> None:
    body = _error(client.post("/predict", json={"rows": [{**ROW, **row}]}), 422, "invalid_request")
    assert body["details"] == [
        {"field": f"rows[0].{field}", "problem": body["details"][0]["problem"], "row": 0}
    ]
    assert problem in body["details"][0]["problem"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused(client: TestClient, literal: str) -> None:
    raw = '{"rows": [{"device": "mobile", "seconds": ' + literal + "}]}"
    body = _error(
        client.post("/predict", content=raw, headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    assert body["details"][0]["field"] == "rows[0].seconds"
    assert "finite" in body["details"][0]["problem"]


def test_every_problem_is_reported_at_once_with_its_row(client: TestClient) -> None:
    rows = [{**ROW, "views": -2, "colour": "red"}, ROW, {**ROW, "device": None}]
    body = _error(client.post("/predict", json={"rows": rows}), 422, "invalid_request")
    found = {(d["row"], d["field"]) for d in body["details"]}
    assert found == {(0, "rows[0].views"), (0, "rows[0].colour"), (2, "rows[2].device")}
    assert body["message"] == "3 problems in the request"


def test_values_the_model_cannot_score_are_a_422_naming_the_rows(client: TestClient) -> None:
    """Valid but absurd values can overflow inside a network: never answer its NaN."""
    rows = [ROW, {**ROW, "views": 1e15}, ROW, {**ROW, "views": 5e12}]
    body = _error(client.post("/predict", json={"rows": rows}), 422, "unscorable")
    assert [(d["field"], d["row"]) for d in body["details"]] == [("rows[1]", 1), ("rows[3]", 3)]
    assert body["message"] == "2 rows cannot be scored: row 1, row 3"
    ranked = client.post(
        "/recommend", json={"user_id": "u1", "features": {"views": 1e15, "device": "mobile"}}
    )
    assert _error(ranked, 422, "unscorable")["details"][0]["field"] == "features"


def test_an_unexpected_error_is_a_json_500_carrying_the_request_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    break_scoring(monkeypatch)
    response = client.post("/predict", json={"rows": [ROW]}, headers={"x-request-id": "t-1"})
    _error(response, 500, "internal_error")
    assert response.headers["x-request-id"] == "t-1"
    assert response.headers["x-model-version"] == "v1"
    # The bug itself is in the log, with its traceback.
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert str(logged.exc_info[1]) == "a bug"


@pytest.mark.parametrize("name", ["int", "float", "str", "bool", "body"])
def test_an_unknown_field_is_named_whatever_its_name(client: TestClient, name: str) -> None:
    body = _error(
        client.post("/predict", json={"rows": [{**ROW, name: 1}]}), 422, "invalid_request"
    )
    assert [d["field"] for d in body["details"]] == [f"rows[0].{name}"]
    ranked = client.post("/recommend", json={"user_id": "u1", name: 1})
    assert [d["field"] for d in _error(ranked, 422, "invalid_request")["details"]] == [name]


def test_a_missing_required_field_is_named(client: TestClient) -> None:
    row = {k: v for k, v in ROW.items() if k != "device"}
    body = _error(client.post("/predict", json={"rows": [row]}), 422, "invalid_request")
    assert body["details"] == [{"field": "rows[0].device", "problem": "Field required", "row": 0}]


def test_unknown_fields_are_refused(client: TestClient) -> None:
    body = _error(client.post("/predict", json={"rows": [ROW], "top": 1}), 422, "invalid_request")
    assert body["details"][0]["field"] == "top"


def test_an_empty_batch_is_refused(client: TestClient) -> None:
    body = _error(client.post("/predict", json={"rows": []}), 422, "invalid_request")
    assert body["details"][0]["field"] == "rows"
    assert "at least 1" in body["details"][0]["problem"]


def test_an_oversize_batch_is_refused(client: TestClient) -> None:
    body = _error(client.post("/predict", json={"rows": [ROW] * 6}), 422, "invalid_request")
    assert "at most 5" in body["details"][0]["problem"]


@pytest.mark.parametrize(
    "payload", [{}, {"rows": [ROW], "columns": {k: [v] for k, v in ROW.items()}}]
)
def test_a_body_needs_rows_or_columns_and_not_both(
    client: TestClient, payload: dict[str, Any]
) -> None:
    body = _error(client.post("/predict", json=payload), 422, "invalid_request")
    ((detail,),) = [body["details"]]
    assert detail["field"] == "body"
    assert '"rows"' in detail["problem"] and '"columns"' in detail["problem"]


# --- /predict with columns --------------------------------------------------------------------


def _as_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names = sorted({k for r in rows for k in r})
    return {k: [r.get(k) for r in rows] for k in names}


def test_columns_score_as_the_same_rows_do(client: TestClient) -> None:
    rows = [
        ROW,
        {"device": "tablet", "views": 1, "seconds": None, "browser": " 3.0 "},
        {"device": "", "returning": False, "browser": 7},
        {"device": "mobile", "seconds": 0.5},
    ]
    by_rows = client.post("/predict", json={"rows": rows})
    by_columns = client.post("/predict", json={"columns": _as_columns(rows)})
    assert by_rows.status_code == by_columns.status_code == 200, by_columns.text
    assert by_columns.json() == by_rows.json()
    # A column left out is missing in every row, as a field left out of every row is.
    without = [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert (
        client.post("/predict", json={"columns": _as_columns(without)}).json()
        == client.post("/predict", json={"rows": without}).json()
    )


def test_a_bad_value_in_a_column_is_named_with_its_row(client: TestClient) -> None:
    columns = {"device": ["mobile", "mobile"], "views": [1, "many"], "browser": [2, 2.5]}
    body = _error(client.post("/predict", json={"columns": columns}), 422, "invalid_request")
    assert {(d["field"], d["row"]) for d in body["details"]} == {
        ("columns.views[1]", 1),
        ("columns.browser[1]", 1),
    }


def test_columns_of_different_lengths_are_refused(client: TestClient) -> None:
    columns = {"device": ["mobile", "tablet", "mobile"], "views": [1, 2, 3], "seconds": [1.0]}
    body = _error(client.post("/predict", json={"columns": columns}), 422, "invalid_request")
    assert body["details"] == [
        {
            "field": "columns",
            "problem": "every column needs one value per row: most have 3, seconds has 1",
        }
    ]


def test_a_required_column_left_out_or_unknown_is_named(client: TestClient) -> None:
    body = _error(
        client.post("/predict", json={"columns": {"views": [1], "colour": ["red"]}}),
        422,
        "invalid_request",
    )
    assert {d["field"]: d["problem"] for d in body["details"]} == {
        "columns.device": "Field required",
        "columns.colour": "Extra inputs are not permitted",
    }


def test_columns_hold_at_most_max_rows_values(client: TestClient) -> None:
    body = _error(
        client.post("/predict", json={"columns": {"device": ["mobile"] * 6}}),
        422,
        "invalid_request",
    )
    assert body["details"][0]["field"] == "columns.device"
    assert "at most 5" in body["details"][0]["problem"]


@pytest.mark.parametrize("raw", ['{"rows": [', "rows=1", '{"rows": [{"views": 01}]}'])
def test_malformed_json_is_a_400(client: TestClient, raw: str) -> None:
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert "not valid JSON" in _error(response, 400, "malformed_json")["message"]


def test_an_empty_body_is_a_400(client: TestClient) -> None:
    response = client.post("/predict", content=b"", headers={"content-type": "application/json"})
    _error(response, 400, "empty_body")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_wrong_content_type_is_a_415(client: TestClient, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    response = client.post("/predict", content=b'{"rows": []}', headers=headers)
    _error(response, 415, "unsupported_media_type")


def test_an_oversize_body_is_a_413(client: TestClient) -> None:
    raw = '{"rows": [{"device": "' + "x" * 3000 + '"}]}'
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert "2048 bytes" in _error(response, 413, "body_too_large")["message"]


def test_an_oversize_streamed_body_is_a_413(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b" " * 1000

    response = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    _error(response, 413, "body_too_large")


def test_an_unknown_model_is_a_404_listing_the_loaded_ones(client: TestClient) -> None:
    for path in ("/models/nope/predict", "/models/nope/recommend"):
        body = _error(client.post(path, json={"rows": [ROW]}), 404, "model_not_found")
        assert body["message"] == "no model named 'nope'; loaded: fake, plain"
    _error(client.get("/models/nope"), 404, "model_not_found")


def test_an_unknown_route_and_a_wrong_method_are_json(client: TestClient) -> None:
    _error(client.get("/nowhere"), 404, "not_found")
    _error(client.get("/predict"), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/predict", "/recommend", "/models/plain/predict"])
def test_a_trailing_slash_on_a_scoring_path_is_redirected_to_it(
    client: TestClient, path: str
) -> None:
    response = client.post(path + "/?x=1", json={"rows": [ROW]}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"].endswith(path + "?x=1")


def test_scoring_paths_are_found_under_a_root_path(
    settings: Settings, registry: FakeRegistry
) -> None:
    app = create_app(settings)
    app.dependency_overrides[get_registry] = lambda: registry
    for root in ("/p", "/propensity"):
        client = TestClient(app, root_path=root)
        assert client.post("/predict", json={"rows": [ROW]}).status_code == 200
        assert client.post(root + "/predict", json={"rows": [ROW]}).status_code == 200


# --- /recommend ------------------------------------------------------------------------------


def _ranked(device: str) -> list[str]:
    prices = {"a": 10.0, "b": 40.0, "c": 5.0, "d": 25.0}
    return sorted(prices, key=lambda i: -fake_score(math.nan, prices[i], device))


def test_recommend_ranks_the_catalogue_by_score(client: TestClient) -> None:
    response = client.post("/recommend", json={"features": {"device": "mobile"}, "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["item_id"] for i in body["items"]] == _ranked("mobile")[:3]
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert body["cold_start"] is False
    assert body["user_id"] is None


def test_all_candidates_are_scored_in_one_call(client: TestClient, registry: FakeRegistry) -> None:
    client.post("/recommend", json={"features": {"device": "mobile"}})
    feeds = registry.last_call()
    assert feeds["price"].ravel().tolist() == [10.0, 40.0, 5.0, 25.0]
    assert set(feeds["device"].ravel()) == {"mobile"}


def test_candidates_exclusions_and_unknown_ids(client: TestClient) -> None:
    response = client.post(
        "/recommend",
        json={
            "features": {"device": "mobile"},
            "candidates": ["b", "d", "zz", "c"],
            "exclude": ["c"],
        },
    )
    body = response.json()
    assert [i["item_id"] for i in body["items"]] == ["d", "b"]
    assert body["unknown_candidates"] == ["zz"]


def test_recommend_by_user_id_uses_the_user_table(
    client: TestClient, registry: FakeRegistry
) -> None:
    body = client.post("/recommend", json={"user_id": "u1"}).json()
    assert body["cold_start"] is False
    assert registry.last_call()["device"][0, 0] == "desktop"
    assert [i["item_id"] for i in body["items"]] == _ranked("desktop")[:3]


def test_request_features_override_the_user_table(
    client: TestClient, registry: FakeRegistry
) -> None:
    client.post("/recommend", json={"user_id": "u1", "features": {"device": "mobile"}})
    assert registry.last_call()["device"][0, 0] == "mobile"
    assert registry.last_call()["returning"][0, 0] == 1.0


def test_an_unknown_user_gets_a_cold_start_ranking(
    client: TestClient, registry: FakeRegistry
) -> None:
    body = client.post("/recommend", json={"user_id": "stranger"}).json()
    assert body["cold_start"] is True
    assert registry.last_call()["device"][0, 0] == MISSING_CATEGORY
    assert len(body["items"]) == 3


def test_item_features_cannot_be_sent_for_a_user(client: TestClient) -> None:
    body = _error(
        client.post("/recommend", json={"features": {"device": "mobile", "price": 3}}),
        422,
        "invalid_request",
    )
    assert body["details"][0]["field"] == "features.price"


@pytest.mark.parametrize(
    ("k", "problem"),
    [
        (0, "greater than or equal to 1"),
        (-3, "greater than or equal to 1"),
        (4, "less than or equal to 3"),
        ("2", "valid integer"),
    ],
)
def test_k_out_of_bounds_is_refused(client: TestClient, k: object, problem: str) -> None:
    body = _error(client.post("/recommend", json={"user_id": "u1", "k": k}), 422, "invalid_request")
    assert body["details"][0]["field"] == "k"
    assert problem in body["details"][0]["problem"]


def test_too_many_candidates_are_refused(client: TestClient) -> None:
    body = _error(
        client.post("/recommend", json={"candidates": list("abcdefg")}), 422, "invalid_request"
    )
    assert body["details"][0]["field"] == "candidates"


def test_a_model_without_catalogue_answers_409(client: TestClient) -> None:
    response = client.post("/models/plain/recommend", json={"features": {"device": "mobile"}})
    assert "no item catalogue" in _error(response, 409, "no_catalog")["message"]


def test_a_user_id_needs_a_user_table(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    write_card(tmp_path, make_card("nousers", users=False))
    fake = FakeRegistry(settings)
    fake.load()
    app = create_app(settings)
    app.dependency_overrides[get_registry] = lambda: fake
    response = TestClient(app).post("/models/nousers/recommend", json={"user_id": "u1"})
    assert _error(response, 422, "no_user_table")["details"][0]["field"] == "user_id"


# --- operations ------------------------------------------------------------------------------


def test_not_ready_until_loaded_and_says_why(settings: Settings) -> None:
    fake = FakeRegistry(settings)  # never loaded
    app = create_app(settings)
    app.dependency_overrides[get_registry] = lambda: fake
    client = TestClient(app)
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert _error(ready, 503, "not_ready")["message"] == "loading models"
    assert ready.headers["retry-after"] == "1"
    response = client.post("/predict", json={"rows": [ROW]})
    _error(response, 503, "not_ready")
    assert response.headers["retry-after"] == "1"


def test_ready_lists_the_models(client: TestClient) -> None:
    body = client.get("/health/ready").json()
    assert body == {"status": "ready", "default": "fake", "models": {"fake": "v1", "plain": "v1"}}


def test_models_and_cards(client: TestClient) -> None:
    models = client.get("/models").json()
    assert [(m["name"], m["default"], m["catalog_items"]) for m in models] == [
        ("fake", True, 4),
        ("plain", False, None),
    ]
    card = client.get("/models/fake").json()
    assert card["threshold"] == 0.5
    assert [f["name"] for f in card["features"]][:2] == ["views", "seconds"]


def test_metrics_count_requests_latency_inference_and_rows(client: TestClient) -> None:
    client.post("/predict", json={"rows": [ROW, ROW]})
    client.post("/predict", json={"rows": []})
    client.post("/recommend", json={"user_id": "u1"})
    text = client.get("/metrics").text
    assert (
        'propensity_http_requests_total{method="POST",model="fake",route="/predict",'
        'status="200"} 1.0'
    ) in text
    assert 'route="/predict",status="422"} 1.0' in text
    assert 'propensity_http_request_duration_seconds_bucket{le="0.0001"' in text
    assert 'propensity_rows_scored_total{endpoint="predict",model="fake"} 2.0' in text
    assert 'propensity_rows_scored_total{endpoint="recommend",model="fake"} 4.0' in text
    assert (
        'propensity_inference_duration_seconds_count{endpoint="predict",model="fake"} 1.0' in text
    )


def test_openapi_shows_each_feature_with_its_contract(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/predict", "/recommend", "/models/fake/predict", "/models/plain/recommend"} <= set(
        spec["paths"]
    )
    row = spec["components"]["schemas"]["FakeRow"]
    assert row["additionalProperties"] is False
    assert row["required"] == ["device"]
    views = row["properties"]["views"]
    assert "Product pages viewed." in views["description"]
    assert views["examples"] == [3]
    assert views["anyOf"][0]["minimum"] == 0
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/FakePredictRequest"}
    assert client.get("/docs").status_code == 200


def test_models_whose_names_differ_by_a_dash_keep_their_own_schemas(tmp_path: Path) -> None:
    assert schema_titles(["my_store", "my-store", "uci_online_shoppers", "a1", "a_1"]) == {
        "a1": "A1",
        "a_1": "A12",
        "my-store": "MyStore",
        "my_store": "MyStore2",
        "uci_online_shoppers": "UciOnlineShoppers",
    }
    for name in ("my-store", "my_store"):
        write_card(tmp_path, make_card(name, catalog=False, users=False))
    config = Settings(models_dir=tmp_path, default_model="my_store")
    registry = FakeRegistry(config)
    registry.load()
    app = create_app(config)
    app.dependency_overrides[get_registry] = lambda: registry
    spec = TestClient(app).get("/openapi.json").json()
    refs = {
        path: spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        for path in ("/predict", "/models/my-store/predict", "/models/my_store/predict")
    }
    assert refs["/models/my-store/predict"]["$ref"].endswith("/MyStorePredictRequest")
    assert refs["/models/my_store/predict"]["$ref"].endswith("/MyStore2PredictRequest")
    assert refs["/predict"] == refs["/models/my_store/predict"]
    assert {"MyStorePredictRequest", "MyStore2PredictRequest"} <= set(spec["components"]["schemas"])
