"""Property-based requests over the whole OpenAPI schema: whatever a client sends, no 500."""

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from m5_assets.settings import data_paths
from m5_serving.app import create_app
from m5_serving.config import ServingSettings


@pytest.fixture(scope="module")
def api_schema(warehouse_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzzed")
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    app = create_app(ServingSettings(paths=data_paths(data_dir), rate_limit_per_minute=0), watch=False)
    state = app.state.services.state
    state.reload()  # the schema loader does not run the app's lifespan
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    state.stop()


def test_no_request_makes_the_server_fail(api_schema):
    """Bounded: 25 valid and 25 invalid generated requests per operation (schemathesis' pytest fixture loader does not
    run under this pytest, so each operation's strategy is driven here)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 14
    statuses = []
    # Valid requests and invalid ones (wrong types, missing fields, out-of-range values).
    for operation, mode in [
        (op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]:

        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def no_server_error(case):
            response = case.call()
            statuses.append(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )

        try:
            no_server_error()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid request

    assert len(statuses) >= 5 * len(operations) and {200, 404, 422} <= set(statuses)
