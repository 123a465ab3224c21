"""Redis as the API's online store, against a real redis-server on loopback: lookups equal the
in-memory snapshot's, replicas share one snapshot and one rate limit, and a new partition is
switched to atomically."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
import uuid

import pytest
import servers
from conftest import NEWEST
from fastapi.testclient import TestClient
from served import SERVED, republish, serving_app, stored_partition

from m5_assets import tables
from m5_serving.online_store import GRACE_SECONDS, OnlineStore, connect

pytestmark = pytest.mark.skipif(
    not shutil.which("redis-server"), reason="redis-server (Debian's package) is not installed; .ci/run installs it"
)

LOOKUPS = [
    ("POST", "/predict", {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24", "interval": 80}),
    ("POST", "/predict", {"item_id": "FOODS_1_001_CA_1", "store_id": "CA_1", "date": "2016-06-19"}),
    (
        "POST",
        "/predict",
        {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-21"},
    ),  # the older partition, from disk
    (
        "POST",
        "/predict",
        {"item_id": "FOODS_1_999", "store_id": "CA_1", "date": "2016-05-24"},
    ),  # unknown: 404 with the nearest
    (
        "POST",
        "/predict/batch",
        {
            "items": [
                {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-25"},
                {"item_id": "FOODS_1_001", "store_id": "XX_9", "date": "2016-05-25"},
            ]
        },
    ),
    ("GET", "/forecasts/CA_1/FOODS_1_001", None),
    ("GET", "/forecasts/CA_1/FOODS_1_001?as_of=2016-05-20", None),
    ("GET", "/forecasts/levels/3", None),
    ("GET", "/forecasts/levels/3?key=CA_1", None),
    ("GET", "/forecasts/levels/1?key=total", None),
    ("GET", "/features/CA_1/FOODS_1_001", None),
    ("GET", "/inventory/CA_1/FOODS_1_001", None),
    ("GET", "/model/info", None),
    ("GET", "/model/features/importance", None),
    ("GET", "/accuracy", None),
    ("GET", "/features", None),
    ("GET", "/drift", None),
]


@pytest.fixture(scope="module")
def redis_url():
    with servers.redis_server() as url:
        yield url


@pytest.fixture
def prefix() -> str:
    """A key space of its own for each test."""
    return f"test-{uuid.uuid4().hex[:8]}"


def _online(data_dir, redis_url: str, prefix: str, **settings):
    return serving_app(data_dir, redis_url=redis_url, redis_prefix=prefix, **({"rate_limit_per_minute": 0} | settings))


def _without_clock(body):
    """An answer without its `timestamp` (when it was answered), recursively."""
    if isinstance(body, dict):
        return {k: _without_clock(v) for k, v in body.items() if k != "timestamp"}
    if isinstance(body, list):
        return [_without_clock(v) for v in body]
    return body


def _ask(client: TestClient, method: str, path: str, body):
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


def test_redis_backed_lookups_equal_in_memory_ones(warehouse_dir, redis_url, prefix):
    with (
        TestClient(serving_app(warehouse_dir, rate_limit_per_minute=0)) as memory,
        TestClient(_online(warehouse_dir, redis_url, prefix)) as online,
    ):
        assert online.get("/info").json()["online_store"] == "redis" and memory.get("/info").json()[
            "online_store"
        ].startswith("memory")
        statuses = []
        for method, path, body in LOOKUPS:
            expected, answer = _ask(memory, method, path, body), _ask(online, method, path, body)
            assert answer.status_code == expected.status_code, (path, body, answer.text)
            assert _without_clock(answer.json()) == _without_clock(expected.json()), (path, body)
            statuses.append(expected.status_code)
        assert statuses.count(200) >= 14 and 404 in statuses
        health = online.get("/health").json()
        assert health["ready"] and health["forecast_date"] == NEWEST.isoformat()
    # The series really live in Redis, one hash field per series, under the token that serves.
    store = OnlineStore(connect(redis_url), prefix)
    series = stored_partition(warehouse_dir, tables.FORECASTS, NEWEST)[["item_id", "store_id"]].drop_duplicates()
    assert store.client.hlen(store.key(store.current_token(), "series")) == len(series)


def test_a_replica_started_after_a_reload_sees_the_new_snapshot_and_publishes_nothing(
    warehouse_dir, tmp_path, redis_url, prefix
):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    store = OnlineStore(connect(redis_url), prefix)
    newer = NEWEST + dt.timedelta(days=1)
    question = {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": (newer + dt.timedelta(days=3)).isoformat()}
    with (
        TestClient(_online(data_dir, redis_url, prefix)) as first,
        TestClient(_online(data_dir, redis_url, prefix)) as running,
    ):
        published = store.current_token()
        assert running.get("/health").json()["forecast_date"] == NEWEST.isoformat()
        assert store.current_token() == published, "the second replica published the same partition again"

        republish(data_dir, NEWEST, newer, lambda f: f.assign(forecast=f["forecast"] * 2))
        assert first.post("/admin/reload").json()["status"] == "loaded"
        switched = store.current_token()
        assert switched != published
        # The old snapshot stays readable for a replica mid-request, then expires.
        assert 0 < store.client.ttl(store.key(published, "series")) <= GRACE_SECONDS
        assert store.client.ttl(store.key(switched, "series")) == -1

        with TestClient(_online(data_dir, redis_url, prefix)) as later:
            assert later.get("/health").json()["forecast_date"] == newer.isoformat()
            assert _without_clock(later.post("/predict", json=question).json()) == _without_clock(
                first.post("/predict", json=question).json()
            )
        # A replica that was already running switches on its next look, without publishing.
        assert running.post("/admin/reload").json()["status"] == "loaded"
        assert store.current_token() == switched
        answer = running.post("/predict", json=question).json()
        row = stored_partition(data_dir, tables.FORECASTS, newer).query(
            "item_id == 'FOODS_1_001' and store_id == 'CA_1'"
        )
        assert answer["forecast_date"] == newer.isoformat()
        assert answer["predicted_sales"] == pytest.approx(
            float(row.loc[row["date"] == dt.date.fromisoformat(question["date"]), "forecast"].iloc[0]), abs=SERVED
        )


def test_a_replica_that_finds_another_publishing_does_not_wait_and_switches_on_its_next_look(
    warehouse_dir, tmp_path, redis_url, prefix
):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    store = OnlineStore(connect(redis_url), prefix)
    newer = NEWEST + dt.timedelta(days=1)
    with TestClient(_online(data_dir, redis_url, prefix)) as replica:
        republish(data_dir, NEWEST, newer)
        publishing = store.lock()
        assert publishing.acquire(blocking=False)  # another process is publishing
        try:
            started = time.monotonic()
            assert replica.post("/admin/reload").json()["status"] == "unchanged"
            assert (
                time.monotonic() - started < 5 and replica.get("/health").json()["forecast_date"] == NEWEST.isoformat()
            )
        finally:
            publishing.release()
        assert replica.post("/admin/reload").json()["status"] == "loaded"
        assert replica.get("/health").json()["forecast_date"] == newer.isoformat()


def test_the_rate_limit_is_one_bucket_for_every_replica(warehouse_dir, redis_url, prefix):
    with (
        TestClient(_online(warehouse_dir, redis_url, prefix, rate_limit_per_minute=4)) as a,
        TestClient(_online(warehouse_dir, redis_url, prefix, rate_limit_per_minute=4)) as b,
    ):
        answers = [c.get("/forecasts/levels/3").status_code for c in (a, b, a, b)]
        assert answers == [200, 200, 200, 200]
        refused = b.get("/forecasts/levels/3")
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 15
        assert a.get("/forecasts/levels/3").status_code == 429


def test_failed_authentications_are_counted_once_for_every_replica(warehouse_dir, redis_url, prefix):
    keyed = {"keys": "a:read:key-a", "rate_limit_per_minute": 3}
    bad = {"Authorization": "Bearer guess"}
    with (
        TestClient(_online(warehouse_dir, redis_url, prefix, **keyed)) as a,
        TestClient(_online(warehouse_dir, redis_url, prefix, **keyed)) as b,
    ):
        assert [c.get("/accuracy", headers=bad).status_code for c in (a, b, a)] == [401, 401, 401]
        assert b.get("/accuracy", headers=bad).status_code == 429 and a.get("/accuracy", headers=bad).status_code == 429
        assert b.get("/accuracy", headers={"Authorization": "Bearer key-a"}).status_code == 429


def test_readers_see_the_old_snapshot_or_the_new_one_never_a_partial_one(warehouse_dir, redis_url, prefix):
    with TestClient(_online(warehouse_dir, redis_url, prefix)) as c:
        state = c.app.state.services.state
        store = state.online
        series = store.client.hlen(store.key(store.current_token(), "series"))
        seen, partial, stop = set(), [], threading.Event()

        def read():
            reader = OnlineStore(connect(redis_url), prefix)  # a connection of its own, as another replica has
            while not stop.is_set():
                token = reader.current_token()
                seen.add(token)
                held = (
                    reader.client.hlen(reader.key(token, "series")),
                    reader.client.exists(reader.key(token, "meta")),
                )
                if held != (series, 1):
                    partial.append((token, held))

        readers = [threading.Thread(target=read) for _ in range(3)]
        for t in readers:
            t.start()
        for _ in range(5):
            store.publish(state._build(state.reader.forecast_dates()))
        stop.set()
        for t in readers:
            t.join()
    assert not partial, partial[:3]
    assert len(seen) >= 3, "the readers never met a switch"


def test_with_redis_down_lookups_and_health_answer_503_saying_so(warehouse_dir, prefix):
    with servers.redis_server() as url:
        client = TestClient(_online(warehouse_dir, url, prefix))
        client.__enter__()
        assert client.get("/health").status_code == 200
    try:
        health = client.get("/health")
        assert health.status_code == 503 and "online store (Redis) is unreachable" in health.json()["reason"]
        lookup = client.post("/predict", json={"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"})
        assert lookup.status_code == 503 and lookup.headers["Retry-After"] == "5" and "Redis" in lookup.json()["detail"]
    finally:
        client.__exit__(None, None, None)
