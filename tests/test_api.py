"""The REST API over the materialized forecasts, against a warehouse the real pipeline wrote."""

import datetime as dt
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import browser
import pandas as pd
import pytest
import servers
from conftest import NEWEST, OLDER
from fastapi.testclient import TestClient
from forecasting import feature_rows
from served import SERVED, republish, serving_app, stored_partition

from m5_assets import tables
from m5_assets.model.selection import BANDS
from m5_assets.settings import data_paths
from m5_serving.__main__ import main as serve_main
from m5_serving.app import create_app
from m5_serving.config import ServingSettings
from m5_serving.security import FileRateLimiter

MAY = "2016-05-01"


@pytest.fixture(scope="module")
def client(warehouse_dir):
    with TestClient(serving_app(warehouse_dir, rate_limit_per_minute=0)) as test_client:
        yield test_client


def test_importing_the_app_loads_no_dagster_no_mlflow_and_no_asset_definitions():
    banned = ("dagster", "mlflow", "lightgbm", "m5_assets.defs", "m5_assets.definitions")
    code = f"import sys, m5_serving.app; print([m for m in {banned!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_root_health_and_info_say_what_serves(client):
    assert client.get("/").json()["links"]["docs"] == "/docs"
    health = client.get("/health").json()
    assert health["ready"] and health["forecast_date"] == NEWEST.isoformat() and health["model_version"]
    info = client.get("/info").json()
    assert info["issued_partitions"] == 2 and info["series"] == 30 and info["auth"].startswith("none")
    assert client.get("/docs").status_code == 200 and "/predict" in client.get("/openapi.json").json()["paths"]


def test_predict_equals_the_stored_row_and_takes_item_ids_both_ways(client, warehouse_dir):
    stored = stored_partition(warehouse_dir, tables.FORECASTS, NEWEST)
    for _, row in stored.sample(12, random_state=3).iterrows():
        for item_id in (row["item_id"], f"{row['item_id']}_{row['store_id']}"):
            for interval in (50, 80, 95):
                body = {"item_id": item_id, "store_id": row["store_id"], "date": str(row["date"]), "interval": interval}
                answer = client.post("/predict", json=body).json()
                assert answer["predicted_sales"] == pytest.approx(row["forecast"], abs=SERVED)
                assert answer["prediction_interval"] == {
                    "lower": pytest.approx(row[f"lo_{interval}"], abs=SERVED),
                    "upper": pytest.approx(row[f"hi_{interval}"], abs=SERVED),
                    "level": interval,
                }
                assert (answer["forecast_date"], answer["horizon"], answer["id"]) == (
                    NEWEST.isoformat(),
                    row["horizon"],
                    row["id"],
                )


def test_a_day_before_the_newest_forecast_is_answered_from_the_forecast_issued_then(client, warehouse_dir):
    stored = stored_partition(warehouse_dir, tables.FORECASTS, OLDER)
    row = stored[(stored["date"] == dt.date(2016, 5, 21))].iloc[0]
    body = {"item_id": row["item_id"], "store_id": row["store_id"], "date": "2016-05-21"}
    answer = client.post("/predict", json=body).json()
    assert answer["forecast_date"] == OLDER.isoformat() and answer["predicted_sales"] == pytest.approx(
        row["forecast"], abs=SERVED
    )
    # as_of picks the older issue date for a day the newest forecast covers too (an audit).
    later = stored[(stored["date"] == dt.date(2016, 5, 30)) & (stored["id"] == row["id"])].iloc[0]
    audit = client.post("/predict", json=body | {"date": "2016-05-30", "as_of": "2016-05-22"}).json()
    assert audit["forecast_date"] == OLDER.isoformat() and audit["predicted_sales"] == pytest.approx(
        later["forecast"], abs=SERVED
    )


@pytest.mark.parametrize(
    "body, phrase",
    [
        ({"item_id": "FOODS_1_0011", "store_id": "CA_1", "date": "2016-05-24"}, "nearest known item ids"),
        ({"item_id": "FOODS_1_001", "store_id": "CA_9", "date": "2016-05-24"}, "unknown store 'CA_9'; stores: CA_1"),
        ({"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-07-01"}, "cover 2016-05-20 .. 2016-06-19"),
        (
            {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24", "as_of": "2016-05-01"},
            "issued on or before 2016-05-01",
        ),
    ],
)
def test_unknown_ids_and_uncovered_days_are_404s_that_say_what_is_known(client, body, phrase):
    response = client.post("/predict", json=body)
    assert response.status_code == 404 and phrase in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24", "extra": 1},
        {"item_id": 7, "store_id": "CA_1", "date": "2016-05-24"},
        {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "24/05/2016"},
        {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24", "interval": 90},
        {"item_id": "FOODS_1_001", "store_id": "CA_1"},
    ],
)
def test_malformed_requests_are_422s(client, body):
    assert client.post("/predict", json=body).status_code == 422


LOOKUP = '"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"'
# Python's JSON parser reads NaN, Infinity and 1e999 as non-finite floats; each must be a 422
# whose body is strict JSON, with the offending input written as text.
NON_FINITE = {
    "NaN interval": ("/predict", f'{{{LOOKUP}, "interval": NaN}}', "NaN"),
    "Infinity interval": ("/predict", f'{{{LOOKUP}, "interval": Infinity}}', "Infinity"),
    "-Infinity interval": ("/predict", f'{{{LOOKUP}, "interval": -Infinity}}', "-Infinity"),
    "1e999 interval": ("/predict", f'{{{LOOKUP}, "interval": 1e999}}', "Infinity"),
    "NaN date": ("/predict", '{"item_id": "FOODS_1_001", "store_id": "CA_1", "date": NaN}', "NaN"),
    "NaN in an unknown field": ("/predict", f'{{{LOOKUP}, "extra": [1, NaN]}}', [1, "NaN"]),
    "NaN body": ("/predict", "NaN", "NaN"),
    "NaN in a batch item": ("/predict/batch", f'{{"items": [{{{LOOKUP}}}, {{{LOOKUP}, "interval": NaN}}]}}', "NaN"),
    "1e999 in a batch item": ("/predict/batch", f'{{"items": [{{{LOOKUP}, "as_of": 1e999}}]}}', "Infinity"),
}


def _strict_json(raw: bytes):
    """``raw`` parsed as strict JSON: NaN and Infinity are refused, as browsers and most clients refuse them."""

    def refuse(constant):
        raise AssertionError(f"the body holds {constant}, which is not JSON: {raw[:300]!r}")

    return json.loads(raw, parse_constant=refuse)


@pytest.mark.parametrize("path, body, shown", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_non_finite_numbers_are_422s_whose_body_is_strict_json_showing_them_as_text(client, path, body, shown):
    response = client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    detail = _strict_json(response.content)["detail"]
    assert shown in [error.get("input") for error in detail], detail


def test_a_batch_fails_only_its_bad_entries_and_is_capped(warehouse_dir):
    good = {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}
    with TestClient(serving_app(warehouse_dir, batch_limit=3, rate_limit_per_minute=0)) as small:
        answer = small.post("/predict/batch", json={"items": [good, good | {"store_id": "XX_1"}, good]}).json()
        assert (answer["succeeded"], answer["failed"]) == (2, 1)
        assert (
            answer["results"][1]["error"]["status"] == 404
            and answer["results"][0]["prediction"]["item_id"] == "FOODS_1_001"
        )
        too_many = small.post("/predict/batch", json={"items": [good] * 4})
        assert too_many.status_code == 422 and "at most 3 items" in too_many.json()["detail"]
        assert small.post("/predict/batch", json={"items": []}).status_code == 422


def test_a_series_horizon_and_the_levels_equal_the_stored_rows(client, warehouse_dir):
    stored = stored_partition(warehouse_dir, tables.FORECASTS, NEWEST)
    row = stored.iloc[0]
    answer = client.get(f"/forecasts/{row['store_id']}/{row['item_id']}").json()
    mine = stored[stored["id"] == row["id"]].sort_values("horizon")
    assert [d["forecast"] for d in answer["days"]] == pytest.approx(mine["forecast"].tolist(), abs=SERVED)
    assert [d["hi_80"] for d in answer["days"]] == pytest.approx(mine["hi_80"].tolist(), abs=SERVED)
    older = client.get(f"/forecasts/{row['store_id']}/{row['item_id']}?as_of={OLDER}").json()
    assert older["forecast_date"] == OLDER.isoformat()

    levels = stored_partition(warehouse_dir, tables.FORECAST_LEVELS, NEWEST)
    stores = client.get("/forecasts/levels/3").json()["keys"]
    assert stores == sorted(levels.loc[levels["level"] == 3, "store_id"].unique())
    store = client.get(f"/forecasts/levels/3?key={stores[0]}").json()
    expected = levels[(levels["level"] == 3) & (levels["store_id"] == stores[0])].sort_values("horizon")
    assert [d["forecast"] for d in store["days"]] == pytest.approx(expected["forecast"].tolist(), abs=SERVED)
    total = client.get("/forecasts/levels/1?key=total").json()
    assert sum(d["forecast"] for d in total["days"]) == pytest.approx(stored["forecast"].sum(), abs=28 * SERVED)
    assert client.get("/forecasts/levels/3?key=NOPE").status_code == 404
    assert client.get("/forecasts/levels/12").status_code == 422


def test_a_whole_level_exports_as_streamed_csv_in_batches_equal_to_the_stored_rows(client, warehouse_dir):
    import io

    from m5_assets.reader import WarehouseReader

    bottom = stored_partition(warehouse_dir, tables.FORECASTS, NEWEST)
    with client.stream("GET", f"/forecasts/levels/12/export.csv?forecast_date={NEWEST}") as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        assert f'filename="forecast_{NEWEST}_level_12.csv"' in answer.headers["content-disposition"]
        text = b"".join(answer.iter_bytes()).decode()
    exported = pd.read_csv(io.StringIO(text))
    assert len(exported) == len(bottom) and list(exported.columns) == [
        c for c in bottom.columns if c != "forecast_date"
    ]
    assert exported["forecast"].sum() == pytest.approx(bottom["forecast"].sum())
    # The rows come a batch at a time, the header once: a level-12 partition is never held whole.
    batches = list(WarehouseReader(data_paths(warehouse_dir)).level_csv(NEWEST, 12, batch_rows=100))
    assert len(batches) == -(-len(bottom) // 100) and sum(b.count(b"\n") for b in batches) == len(bottom) + 1
    levels = stored_partition(warehouse_dir, tables.FORECAST_LEVELS, NEWEST)
    stores = pd.read_csv(io.BytesIO(client.get(f"/forecasts/levels/3/export.csv?forecast_date={NEWEST}").content))
    assert len(stores) == (levels["level"] == 3).sum() and set(stores["level"]) == {3}
    assert client.get("/forecasts/levels/3/export.csv?forecast_date=2001-01-01").status_code == 404
    assert client.get("/forecasts/levels/13/export.csv").status_code == 422


def test_accuracy_features_and_the_model_card(client, warehouse_dir):
    assert client.get("/accuracy").json()["scored"] == 0  # the tiny forecasts have no actuals yet
    catalog = client.get("/features").json()["features"]
    assert "roll_mean_28" in {f["name"] for f in catalog}
    row = client.get("/features/CA_1/FOODS_1_001").json()
    features = feature_rows(warehouse_dir / "warehouse")
    expected = features[(features["id"] == row["id"]) & (features["date"] == NEWEST)].iloc[0]
    assert row["features"]["roll_mean_28"] == pytest.approx(expected["roll_mean_28"])
    info = client.get("/model/info").json()
    card = pd.read_parquet(tables.MODEL_CARDS.path(warehouse_dir / "warehouse", info["model_version"])).iloc[0]
    assert (str(card["cutoff"]), info["cutoff"], info["promoted"]) == (MAY, MAY, True)
    assert info["validation_scores"]["issued"]["wrmsse"] == pytest.approx(card["wrmsse"])
    assert info["issue_rule"]["issued_as"] and len(info["issue_rule"]["bands"]) == len(BANDS)
    # The card's serving_version was the version compared with at training: named so, beside what serves.
    assert "serving_version" not in info and info["compared_with_version"] == (card["serving_version"] or None)
    assert info["version_serving_now"] == client.get("/health").json()["model_version"]
    importance = client.get("/model/features/importance").json()["features"]
    assert importance[0]["gain"] >= importance[-1]["gain"] and sum(f["share"] for f in importance) == pytest.approx(
        1, abs=1e-4
    )


def test_keys_scopes_and_open_health(warehouse_dir, tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# id scope digest\nops admin sha256:{hashlib.sha256(b'admin-secret').hexdigest()}\n")
    app = serving_app(warehouse_dir, keys="reader:read:read-secret", keys_file=keys_file, rate_limit_per_minute=0)
    body = {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}
    with TestClient(app) as c:
        assert c.post("/predict", json=body).status_code == 401
        assert c.post("/predict", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/predict", json=body, headers={"Authorization": "Bearer read-secret"}).status_code == 200
        denied = c.post("/admin/reload", headers={"Authorization": "Bearer read-secret"})
        assert denied.status_code == 403 and "needs 'admin'" in denied.json()["detail"]
        assert c.post("/admin/reload", headers={"Authorization": "Bearer admin-secret"}).json()["status"] == "unchanged"
        assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200
    with TestClient(serving_app(warehouse_dir, keys="reader:read:read-secret", protect_health=True)) as c:
        assert c.get("/health").status_code == 401 and c.get("/metrics").status_code == 401


def test_the_rate_limit_answers_429_with_retry_after_until_the_bucket_refills(warehouse_dir):
    now = [1000.0]
    app = serving_app(warehouse_dir, keys="a:read:key-a,b:read:key-b", rate_limit_per_minute=3, clock=lambda: now[0])
    with TestClient(app) as c:
        as_a, as_b = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}
        assert [c.get("/accuracy", headers=as_a).status_code for _ in range(3)] == [200, 200, 200]
        limited = c.get("/accuracy", headers=as_a)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "20"
        assert c.get("/accuracy", headers=as_b).status_code == 200  # per key
        now[0] += 20
        assert c.get("/accuracy", headers=as_a).status_code == 200


def test_failed_authentications_are_limited_per_address_and_past_the_limit_no_key_is_checked(warehouse_dir):
    now = [1000.0]
    app = serving_app(warehouse_dir, keys="a:read:key-a", rate_limit_per_minute=3, clock=lambda: now[0])
    good, bad = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer guess"}
    with TestClient(app) as c:
        elsewhere = TestClient(app, client=("10.0.0.9", 50000))
        assert [c.get("/accuracy", headers=bad).status_code for _ in range(3)] == [401, 401, 401]
        limited = c.get("/accuracy", headers=bad)
        assert (
            limited.status_code == 429
            and limited.headers["Retry-After"] == "20"
            and "failed authentications" in limited.json()["detail"]
        )
        # Past the limit the right key is refused too: a guesser must not tell it from wrong ones.
        assert c.get("/accuracy", headers=good).status_code == 429 and c.get("/accuracy").status_code == 429
        # Per address: another client is neither blocked nor counted with it.
        assert elsewhere.get("/accuracy", headers=good).status_code == 200
        assert elsewhere.get("/accuracy", headers=bad).status_code == 401
        now[0] += 20  # one failure's worth refilled
        assert c.get("/accuracy", headers=good).status_code == 200
        assert [c.get("/info", headers=bad).status_code for _ in range(2)] == [401, 429]


def test_the_workers_of_one_server_share_the_rate_limit_through_the_file(warehouse_dir, tmp_path):
    def worker():
        return serving_app(
            warehouse_dir, keys="a:read:key-a", rate_limit_per_minute=4, rate_limit_file=tmp_path / "buckets.sqlite"
        )

    as_a = {"Authorization": "Bearer key-a"}
    with TestClient(worker()) as first, TestClient(worker()) as second:
        assert [c.get("/accuracy", headers=as_a).status_code for c in (first, second, first, second)] == [200] * 4
        refused = first.get("/accuracy", headers=as_a)
        assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 15
        assert second.get("/accuracy", headers=as_a).status_code == 429


def _open_limiter_at_the_barrier(path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        FileRateLimiter(Path(path), 5).take("client")
    except Exception as error:  # noqa: BLE001 - reported to the parent, which asserts on it
        errors.put(repr(error))


def test_workers_booting_together_on_a_fresh_bucket_file_all_start(tmp_path):
    # Gunicorn's workers create their limiters at the same instant; switching a new file to WAL
    # raced ("database is locked", a worker exits 3) about one boot in six before this was fixed.
    context = multiprocessing.get_context("fork")
    for trial in range(12):
        path, barrier, errors = tmp_path / f"buckets-{trial}.sqlite", context.Barrier(6), context.Queue()
        workers = [
            context.Process(target=_open_limiter_at_the_barrier, args=(str(path), barrier, errors)) for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [worker.exitcode for worker in workers] == [0] * 6
        assert errors.empty(), errors.get()
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_python_m_m5_serving_with_two_workers_gives_a_key_its_limit_once(warehouse_dir, tmp_path):
    port = servers.free_port()
    env = dict(
        os.environ,
        M5_DATA_DIR=str(warehouse_dir),
        M5_API_RELOAD_SECONDS="0",
        M5_API_RATE_LIMIT="10",
        M5_API_KEYS="a:read:key-a",
        M5_API_KEYS_FILE="",
        M5_API_REDIS_URL="",
        M5_API_RATE_LIMIT_FILE="",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
    )
    base = f"http://127.0.0.1:{port}"
    with servers.started(
        [sys.executable, "-m", "m5_serving", "--port", str(port), "--workers", "2"], env, tmp_path / "api.log"
    ) as api:
        servers.wait_until(lambda: servers.http_ok(f"{base}/health"), api, "the API")
        workers = subprocess.run(["pgrep", "-P", str(api.pid)], capture_output=True, text=True).stdout.split()
        statuses, started = [], time.monotonic()

        def ask() -> None:
            connection = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=10
            )  # a connection each, so both workers answer
            connection.request("GET", "/accuracy", headers={"Authorization": "Bearer key-a"})
            statuses.append(connection.getresponse().status)
            connection.close()

        # Until each worker has answered more than the limit (which worker accepts is the kernel's
        # choice): with a bucket per worker, both would then have admitted 10.
        answered = {}
        while len(statuses) < 800 and (len(answered) < 2 or min(answered.values()) <= 10):
            askers = [threading.Thread(target=ask) for _ in range(8)]
            for t in askers:
                t.start()
            for t in askers:
                t.join()
            answered = _requests_per_worker(tmp_path / "metrics", "/accuracy")
        seconds = time.monotonic() - started
    assert len(workers) == 2, workers
    assert len(answered) == 2 and min(answered.values()) > 10, f"a worker answered too few requests to tell: {answered}"
    # 10 a minute, and those refilled meanwhile (one each 6 s).
    admitted = statuses.count(200)
    assert 10 <= admitted <= 10 + math.ceil(seconds / 6) and statuses.count(429) == len(statuses) - admitted, (
        answered,
        seconds,
        statuses,
    )


def _requests_per_worker(metrics_dir, route: str) -> dict[str, float]:
    """Requests to ``route`` each worker counted, from its own file of Prometheus samples."""
    from prometheus_client.mmap_dict import MmapedDict

    answered = {}
    for path in metrics_dir.glob("counter_*.db"):
        answered[path.stem] = 0.0
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            metric, _, labels, *_ = json.loads(key)
            if metric == "m5_api_requests" and labels.get("route") == route:
                answered[path.stem] += value
    return answered


def test_a_body_over_the_limit_is_a_413(warehouse_dir):
    with TestClient(serving_app(warehouse_dir, max_body_bytes=200, rate_limit_per_minute=0)) as c:
        items = [{"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}] * 10
        assert c.post("/predict/batch", json={"items": items}).status_code == 413


def test_a_chunked_body_over_the_limit_is_a_413_too(warehouse_dir):
    items = json.dumps({"items": [{"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}] * 10}).encode()
    chunks = [items[i : i + 64] for i in range(0, len(items), 64)]
    with TestClient(serving_app(warehouse_dir, max_body_bytes=200, rate_limit_per_minute=0)) as c:
        # A generator body is sent without Content-Length, as Transfer-Encoding: chunked.
        answer = c.post("/predict/batch", content=iter(chunks), headers={"Content-Type": "application/json"})
        assert answer.status_code == 413 and answer.json()["detail"] == "request body over 200 bytes"
        within = c.post(
            "/predict/batch",
            content=iter([items[:0], json.dumps({"items": [json.loads(items)["items"][0]]}).encode()]),
            headers={"Content-Type": "application/json"},
        )
        assert within.status_code == 200 and within.json()["succeeded"] == 1


@pytest.fixture(scope="module")
def live_api(warehouse_dir, tmp_path_factory):
    """The API under uvicorn (``python -m m5_serving``) on loopback, with a 400-byte body limit: host and port."""
    port = servers.free_port()
    env = dict(
        os.environ,
        M5_DATA_DIR=str(warehouse_dir),
        M5_API_RELOAD_SECONDS="0",
        M5_API_RATE_LIMIT="0",
        M5_API_MAX_BODY_BYTES="400",
        M5_API_KEYS="",
        M5_API_KEYS_FILE="",
        M5_API_REDIS_URL="",
    )
    log = tmp_path_factory.mktemp("live-api") / "api.log"
    with servers.started([sys.executable, "-m", "m5_serving", "--port", str(port)], env, log) as api:
        servers.wait_until(lambda: servers.http_ok(f"http://127.0.0.1:{port}/health"), api, "the API")
        yield "127.0.0.1", port


def test_a_live_server_answers_non_finite_numbers_and_chunked_excess_without_dropping_the_connection(live_api):
    connection = http.client.HTTPConnection(*live_api, timeout=10)
    try:
        connection.connect()
        socket = connection.sock
        json_header = {"Content-Type": "application/json"}
        for path, body, _ in NON_FINITE.values():
            connection.request("POST", path, body=body.encode(), headers=json_header)
            answer = connection.getresponse()
            assert answer.status == 422 and not answer.will_close, (path, body, answer.status)
            _strict_json(answer.read())
            assert connection.sock is socket, f"the server dropped the connection after {body}"
        big = json.dumps(
            {"items": [{"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}] * 10}
        ).encode()
        connection.request(
            "POST", "/predict/batch", body=iter([big[:300], big[300:]]), headers=json_header, encode_chunked=True
        )
        answer = connection.getresponse()
        assert answer.status == 413 and _strict_json(answer.read())["detail"] == "request body over 400 bytes"
        connection.close()
        connection.request("POST", "/predict", body=f"{{{LOOKUP}}}".encode(), headers=json_header)
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_an_empty_warehouse_starts_not_ready_and_says_to_run_the_pipeline_first(tmp_path):
    with TestClient(serving_app(tmp_path)) as c:
        health = c.get("/health")
        assert health.status_code == 503 and "make run" in health.json()["reason"]
        lookup = c.post("/predict", json={"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"})
        assert lookup.status_code == 503 and "make run" in lookup.json()["detail"]


@pytest.mark.parametrize(
    "corruption",
    [
        lambda f: f.assign(forecast=-1.0),
        lambda f: f.assign(lo_80=f["hi_80"] + 1),
        lambda f: f.drop(columns=["hi_95"]),
        lambda f: f.iloc[0:0],
    ],
    ids=["negative forecast", "lo above hi", "missing column", "empty file"],
)
def test_a_corrupt_newest_partition_is_refused_and_the_old_snapshot_keeps_serving(warehouse_dir, tmp_path, corruption):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    with TestClient(serving_app(data_dir, rate_limit_per_minute=0)) as c:
        republish(data_dir, NEWEST, NEWEST + dt.timedelta(days=1), corruption)
        outcome = c.post("/admin/reload").json()
        assert outcome["status"] == "refused" and outcome["serving"] == NEWEST.isoformat()
        assert c.get("/health").json()["forecast_date"] == NEWEST.isoformat()
        assert (
            c.post("/predict", json={"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}).status_code
            == 200
        )
        assert "m5_api_snapshot_refusals_total 1.0" in c.get("/metrics").text


def _copy_partition(data_dir, source: dt.date, day: dt.date) -> None:
    """``source``'s forecast files, unchanged, under ``day``'s folders (the bottom file last)."""
    for table in (tables.FORECAST_LEVELS, tables.FORECASTS):
        target = table.path(data_dir / "warehouse", day)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(table.path(data_dir / "warehouse", source), target)


def test_a_partition_copied_under_another_dates_folder_is_refused_and_the_old_snapshot_keeps_serving(
    warehouse_dir, tmp_path
):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    question = {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-25"}
    with TestClient(serving_app(data_dir, rate_limit_per_minute=0)) as c:
        expected = c.post("/predict", json=question).json()
        shifted = NEWEST + dt.timedelta(days=1)
        _copy_partition(data_dir, NEWEST, shifted)
        outcome = c.post("/admin/reload").json()
        assert outcome["status"] == "refused" and outcome["serving"] == NEWEST.isoformat()
        assert f"issued on {NEWEST}, not on the folder's {shifted}" in outcome["reason"]
        answer = c.post("/predict", json=question).json()
        assert (answer["forecast_date"], answer["predicted_sales"]) == (NEWEST.isoformat(), expected["predicted_sales"])


def test_an_older_partition_copied_under_another_dates_folder_is_not_served_shifted(warehouse_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    earlier = OLDER - dt.timedelta(days=1)
    _copy_partition(data_dir, OLDER, earlier)
    with TestClient(serving_app(data_dir, rate_limit_per_minute=0), raise_server_exceptions=False) as c:
        answer = c.post("/predict", json={"item_id": "FOODS_1_001", "store_id": "CA_1", "date": earlier.isoformat()})
        assert (
            answer.status_code == 500 and f"issued on {OLDER}, not on the folder's {earlier}" in answer.json()["detail"]
        )
        assert str(data_dir) not in answer.text


def test_info_needs_a_key_when_keys_are_set_and_no_answer_shows_a_filesystem_path(warehouse_dir, tmp_path):
    with TestClient(serving_app(warehouse_dir, keys="reader:read:read-secret", rate_limit_per_minute=0)) as c:
        assert c.get("/info").status_code == 401
        info = c.get("/info", headers={"Authorization": "Bearer read-secret"})
        assert info.status_code == 200 and info.json()["series"] == 30
        assert str(warehouse_dir) not in info.text and "/tmp" not in info.text
    with TestClient(serving_app(tmp_path / "empty")) as c:  # open /health, nothing issued yet
        health = c.get("/health")
        assert health.status_code == 503 and "warehouse/forecasts" in health.json()["reason"]
        assert str(tmp_path) not in health.text


def test_reloads_during_requests_never_fail_or_mix_two_snapshots(warehouse_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    newest = stored_partition(data_dir, tables.FORECASTS, NEWEST)
    row = newest[(newest["item_id"] == "FOODS_1_001") & (newest["store_id"] == "CA_1")].sort_values("horizon")
    # Each republished day d carries NEWEST's forecasts times (d - NEWEST).days + 1, so an
    # answer's forecast_date says exactly which value it must hold.
    expected = {}
    with TestClient(serving_app(data_dir, rate_limit_per_minute=0)) as c:
        failures, seen, stop = [], set(), threading.Event()

        def ask():
            while not stop.is_set():
                answer = c.post("/predict", json={"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-06-10"})
                if answer.status_code != 200:
                    failures.append(answer.text)
                    continue
                body = answer.json()
                seen.add(body["forecast_date"])
                scale = (dt.date.fromisoformat(body["forecast_date"]) - NEWEST).days + 1
                # Republished days keep the horizons of the rows they copy.
                base = float(row.loc[row["horizon"] == body["horizon"], "forecast"].iloc[0])
                if body["predicted_sales"] != pytest.approx(scale * base, abs=SERVED):
                    failures.append(f"mixed: {body}")

        askers = [threading.Thread(target=ask) for _ in range(4)]
        for t in askers:
            t.start()
        for k in range(1, 6):
            day = NEWEST + dt.timedelta(days=k)
            republish(
                data_dir,
                NEWEST,
                day,
                lambda f, s=k + 1: f.assign(
                    **{c: f[c] * s for c in f.columns if c == "forecast" or c[:3] in ("lo_", "hi_")}
                ),
            )
            expected[day] = c.post("/admin/reload").json()["status"]
        stop.set()
        for t in askers:
            t.join()
    assert set(expected.values()) == {"loaded"}
    assert not failures, failures[:3]
    assert len(seen) >= 2, "the requests never met a reload"


def test_without_keys_it_refuses_to_bind_beyond_loopback(monkeypatch, capsys):
    monkeypatch.delenv("M5_API_KEYS", raising=False)
    monkeypatch.delenv("M5_API_KEYS_FILE", raising=False)
    assert serve_main(["--host", "0.0.0.0"]) == 2
    assert "refusing to serve on 0.0.0.0 without an API key" in capsys.readouterr().err


def test_the_model_card_holds_exactly_its_declared_columns(warehouse_dir):
    (version,) = [p.name.split("=")[1] for p in tables.MODEL_CARDS.folder(warehouse_dir / "warehouse").iterdir()]
    card = pd.read_parquet(tables.MODEL_CARDS.path(warehouse_dir / "warehouse", version))
    assert list(card.columns) == list(tables.MODEL_CARDS.columns)
    # Every column is filled, but the like-for-like score of a model that had none to compare with.
    compared = card["serving_version"].iloc[0] != ""
    filled = card.drop(columns=[] if compared else ["serving_wrmsse_same_window"]).notna().all(axis=None)
    assert filled and card["serving_wrmsse_same_window"].notna().iloc[0] == compared


def test_the_watcher_serves_a_newly_published_partition_without_being_asked(warehouse_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    app = create_app(ServingSettings(paths=data_paths(data_dir), reload_seconds=0.2, rate_limit_per_minute=0))
    with TestClient(app) as c:
        assert c.get("/health").json()["forecast_date"] == NEWEST.isoformat()
        republish(data_dir, NEWEST, NEWEST + dt.timedelta(days=1))
        for _ in range(100):
            if c.get("/health").json()["forecast_date"] != NEWEST.isoformat():
                break
            threading.Event().wait(0.1)
        assert c.get("/health").json()["forecast_date"] == (NEWEST + dt.timedelta(days=1)).isoformat()


def test_access_logs_are_json_lines_without_keys_or_bodies(warehouse_dir, caplog):
    app = serving_app(
        warehouse_dir, keys="ops:read:very-secret", rate_limit_per_minute=0, cors_origins=("https://planner.example",)
    )
    with TestClient(app) as c, caplog.at_level("INFO", logger="m5_serving.access"):
        body = {"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}
        answer = c.post(
            "/predict",
            json=body,
            headers={
                "Authorization": "Bearer very-secret",
                "X-Request-ID": "req-42",
                "Origin": "https://planner.example",
            },
        )
        assert answer.headers["x-request-id"] == "req-42"
        assert answer.headers["access-control-allow-origin"] == "https://planner.example"
        assert (
            "access-control-allow-origin"
            not in c.get("/health", headers={"Origin": "https://elsewhere.example"}).headers
        )
    (line,) = [r.getMessage() for r in caplog.records if "req-42" in r.getMessage()]
    entry = __import__("json").loads(line)
    assert entry | {"latency_ms": 0} == {
        "request_id": "req-42",
        "key_id": "ops",
        "method": "POST",
        "route": "/predict",
        "status": 200,
        "latency_ms": 0,
    }
    assert "very-secret" not in line and "FOODS_1_001" not in line


def test_a_model_without_a_card_is_a_404_that_says_so(warehouse_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(warehouse_dir / "warehouse", data_dir / "warehouse")
    shutil.rmtree(data_dir / "warehouse" / tables.MODEL_CARDS.name)
    with TestClient(serving_app(data_dir, rate_limit_per_minute=0)) as c:
        answer = c.get("/model/info")
        assert answer.status_code == 404 and "no model card for version" in answer.json()["detail"]
        assert (
            c.post("/predict", json={"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}).status_code
            == 200
        )


def test_inventory_returns_the_stored_plan_of_one_item_store(client, warehouse_dir):
    stored = stored_partition(warehouse_dir, tables.INVENTORY_PLAN, NEWEST).set_index("id")
    series = stored.index[3]
    row = stored.loc[series]
    got = client.get(f"/inventory/{row['store_id']}/{row['item_id']}")
    assert got.status_code == 200
    body = got.json()
    assert body["forecast_date"] == NEWEST.isoformat() and body["id"] == series
    for column in ("safety_stock", "reorder_point", "order_up_to", "eoq", "lead_time_demand"):
        assert body[column] == pytest.approx(row[column])
    missing = client.get(f"/inventory/{row['store_id']}/NOPE_1_001")
    assert missing.status_code == 404 and "unknown item" in missing.json()["detail"]


def test_drift_lists_every_feature_of_the_newest_date_and_names_the_flagged(client, warehouse_dir):
    stored = stored_partition(warehouse_dir, tables.FEATURE_DRIFT, NEWEST)
    body = client.get("/drift").json()
    assert body["forecast_date"] == NEWEST.isoformat()
    assert [f["feature"] for f in body["features"]] == stored["feature"].tolist()
    assert body["features"][0]["psi"] == pytest.approx(stored["psi"].iloc[0])
    assert body["flagged"] == stored.loc[stored["status"].isin(["warn", "drift"]), "feature"].tolist()


@pytest.mark.skipif(
    not browser.available(),
    reason="chromium and chromedriver (Debian packages) are not installed; .ci/run installs them",
)
@pytest.mark.parametrize(
    "page, shows",
    [
        ("docs", ["m5-forecasting API", "/forecasts/{store_id}/{item_id}", "One series' 28 days with every interval"]),
        ("redoc", ["m5-forecasting API", "One series' 28 days with every interval", "Response samples"]),
    ],
)
def test_the_api_docs_render_with_no_other_host_reachable_and_request_nothing_from_one(live_api, page, shows):
    host, port = live_api
    driver = browser.open_browser(browser.new_profile(), offline=True)
    try:
        driver.get(f"http://{host}:{port}/{page}")
        browser.wait_for_text(driver, shows, seconds=30)
        assert browser.requested_hosts(driver) == {f"{host}:{port}"}
    finally:
        driver.quit()


def test_served_units_are_rounded_to_three_decimals(client):
    """A forecast is not known to a millionth of a unit: every served value has at most 3 decimals."""
    days = client.get("/forecasts/CA_1/FOODS_1_001").json()["days"]
    level = client.get("/forecasts/levels/3", params={"key": "CA_1"}).json()["days"]
    single = client.post("/predict", json={"item_id": "FOODS_1_001", "store_id": "CA_1", "date": "2016-05-24"}).json()
    values = [v for day in days + level for k, v in day.items() if k not in ("date", "horizon")]
    values += [single["predicted_sales"], *single["prediction_interval"].values()]
    assert values and all(round(v, 3) == v for v in values)
    assert any(round(v, 2) != v for v in values), "rounded to fewer decimals than three"


def test_every_operation_documents_its_refusals_and_real_examples(client):
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answers = set(operation["responses"])
            if path not in ("/", "/health", "/metrics"):
                assert {"401", "403", "429", "503"} <= answers, (method, path, answers)
            for code in answers - {"200", "422"}:
                assert operation["responses"][code]["description"], (method, path, code)
    assert {"404", "413", "422"} <= set(schema["paths"]["/predict"]["post"]["responses"])
    assert "404" in schema["paths"]["/forecasts/{store_id}/{item_id}"]["get"]["responses"]
    parameters = {p["name"]: p for p in schema["paths"]["/forecasts/{store_id}/{item_id}"]["get"]["parameters"]}
    assert parameters["store_id"]["examples"]["a store"]["value"] == "CA_1" and parameters["item_id"]["description"]
    example = schema["components"]["schemas"]["PredictRequest"]["examples"][0]
    # A real M5 item at a real store, and a day the newest Kaggle forecast (2016-05-23) covers.
    assert (example["item_id"], example["store_id"], example["date"]) == ("FOODS_3_090", "CA_1", "2016-05-25")
