"""Property-based API test: schemathesis generates requests from the service's own OpenAPI
document, valid and invalid, for every operation; no answer may be a 5xx, and every answer must
fit the document (status code, content type, body schema, headers).

The generation is seeded, so CI runs the same requests each time; FUZZ_SEED=N explores others.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.integration.live import start_service, stop_service

EXAMPLES = 100  # per operation and mode; the shipped bundles give 14 operations


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    # A body cap far above the largest schema-valid body: a generated body that breaks the
    # schema (10,001 candidates of long strings) must meet validation (422), not the cap (413).
    proc, url = start_service(
        log, default_model="storefront", log_level="warning", max_body_bytes=str(64 * 2**20)
    )
    yield url, log
    stop_service(proc)


def _one_length(case: schemathesis.Case) -> schemathesis.Case:
    """A valid /predict body in columns has one value per row in every column, which JSON
    Schema cannot say (the document says it in words): cut a generated one to its shortest."""
    columns = case.body.get("columns") if isinstance(case.body, dict) else None
    lists = (
        [v for v in columns.values() if isinstance(v, list)] if isinstance(columns, dict) else []
    )
    if lists:
        shortest = min(len(v) for v in lists)
        case.body["columns"] = {
            k: v[:shortest] if isinstance(v, list) else v for k, v in columns.items()
        }
    return case


def test_generated_requests_get_no_5xx_and_answers_that_fit_the_schema(live) -> None:  # type: ignore[no-untyped-def]
    url, log = live
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    calls: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE).map(_one_length),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @seed(int(os.environ.get("FUZZ_SEED", "0")))
        @given(case=strategy)
        @settings(
            max_examples=2 * EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate()
            calls[case.operation.label] += 1
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.as_curl_command(), response.text[:500])

        check()
    print(
        f"{sum(calls.values())} generated requests over {len(calls)} operations; "
        f"answers by status: {dict(sorted(statuses.items()))}"
    )
    assert sum(calls.values()) >= 1000, calls
    assert len(calls) >= 10, calls  # every operation, not a few
    assert statuses[200] > 0 and any(400 <= s < 500 for s in statuses), statuses
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
