"""A bounded schemathesis run against the OpenAPI document: no answer may be a server error, and
every answer must match the documented status codes, content types and schemas.

POST /v1/analyze is left out: each example would start a full analysis run (it has its own test).
Operations that need the tagger are fuzzed only when a tagger bundle can be built here.
"""

from __future__ import annotations

import pytest

# A dev tool (pinned schemathesis==4.32.5); without it this module is skipped, not an error.
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from analyzer.config import Settings  # noqa: E402

HEADERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(
    api_store_file, copy_store, tmp_path_factory: pytest.TempPathFactory
) -> schemathesis.BaseSchema:
    from api.app import create_app
    from api.keys import create_key

    folder = tmp_path_factory.mktemp("fuzz")
    path = copy_store(api_store_file, folder)  # the fuzzer writes: a copy of its own
    app = create_app(
        Settings(
            store_path=path,
            tagger_model=str(folder / "no-tagger"),
            rate_limit_per_minute=0,  # limits have their own test; here every request must land
        )
    )
    key, _ = create_key(app.state.civicpulse.store, "schemathesis")
    HEADERS["Authorization"] = f"Bearer {key}"
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema = schema.exclude(path="/v1/analyze")
    if app.state.civicpulse.tagger.status() != "ok":
        # Without a tagger these answer 503 by design; they are fuzzed when one is available.
        schema = schema.exclude(path_regex=r"^/v1/(tag|corrections)$").exclude(
            path_regex=r"^/open311/v2/services\.(json|xml)$"
        )
    return schema


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(case: schemathesis.Case) -> None:
    if case.path in ("/open311/v2/requests.json", "/open311/v2/requests.xml") and (
        case.method == "POST"
    ):
        body = case.body if isinstance(case.body, dict) else {}
        if not body.get("service_code"):
            return  # without a tagger, a request must name its service (503 by design)
    case.call_and_validate(headers=HEADERS, checks=CHECKS)


@pytest.mark.slow
def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, up to 25 generated examples each (the pytest plugin's lazy loader does not
    run under this pytest, so the operations are driven here one by one)."""
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        run = given(case=operation.as_strategy())(
            settings(
                max_examples=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
                derandomize=True,
            )(lambda case: fuzz(case))
        )
        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
