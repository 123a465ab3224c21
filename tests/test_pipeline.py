import contextlib
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import servers
import yaml
from forecasting import feature_rows, run_pipeline

from m5_assets import tables
from m5_assets.cli import main
from m5_assets.settings import data_paths
from m5_assets.table_files import MANIFEST
from m5_assets.warehouse import table_path

ROOT = Path(__file__).resolve().parents[1]
FEATURE_STORE_ASSETS = {"raw_calendar", "raw_sell_prices", "raw_sales", "sales_long", "feature_catalog", "features"}
ASSETS = FEATURE_STORE_ASSETS | {
    "demand_model",
    "model_tuning",
    "forecasts",
    "forecast_levels",
    "forecast_accuracy",
    "feature_drift",
    "inventory_plan",
    "backtest_report",
}


def test_definitions_load_with_every_asset_check_and_the_job():
    from m5_assets.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS
    check_keys = {f"{k.asset_key.to_user_string()}.{k.name}" for k in graph.asset_check_keys}
    assert {
        "raw_sales.parses",
        "raw_sales.units_valid",
        "raw_calendar.days_continuous",
        "raw_sell_prices.keys_known",
        "sales_long.sales_long_complete",
        "features.features_within_catalog_rules",
    } <= check_keys
    assert {
        "demand_model.beats_seasonal_naive",
        "forecast_accuracy.accuracy_in_line_with_history",
        "forecast_levels.levels_add_up",
        "forecasts.forecasts_within_history",
        "feature_drift.features_stable",
        "backtest_report.meets_accuracy_targets",
    } <= check_keys
    materialized_by = {
        job: {k.to_user_string() for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys}
        for job in ("build_feature_store", "train_model", "tune_model", "issue_forecast", "score_forecast", "backtest")
    }
    assert materialized_by == {
        "build_feature_store": FEATURE_STORE_ASSETS,
        "train_model": {"demand_model"},
        "tune_model": {"model_tuning"},
        "issue_forecast": {"forecasts", "forecast_levels", "feature_drift", "inventory_plan"},
        "score_forecast": {"forecast_accuracy"},
        "backtest": {"backtest_report"},
    }
    assert [n.name for n in defs.resolve_job_def("promote_model").nodes] == [
        "promote_version"
    ]  # manual, never launched
    assert {s.name for s in defs.schedules} == {"daily_forecast", "daily_scoring", "monthly_retrain"}
    assert {s.name for s in defs.sensors} == {
        "raw_files_changed",
        "features_refreshed",
        "champion_changed",
        "check_alerts",
        "run_failure_alerts",
        "forecast_freshness",
    }
    # Neither tuning nor the backtest is launched by the automation: no schedule or sensor targets them.
    launched = {s.job_name for s in defs.schedules} | {
        t.job_name for s in defs.sensors for t in s.targets if s.name != "forecast_freshness"
    }
    assert launched == {"issue_forecast", "score_forecast", "train_model", "build_feature_store"}
    assert all(a.description for a in (*defs.schedules, *defs.sensors))


def test_every_asset_names_its_owner_domain_layer_and_that_it_holds_no_personal_data(monkeypatch):
    from m5_assets.definitions import build_definitions
    from m5_assets.defs.resources import default_data_resource

    monkeypatch.setenv("M5_ASSET_OWNER", "planning@retailer.example")
    graph = build_definitions(default_data_resource()).resolve_asset_graph()
    layers = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == ["planning@retailer.example"], key
        assert node.tags["domain"] == "demand-forecasting" and node.tags["pii"] == "false", key
        layers[key.to_user_string()] = node.tags["layer"]
    assert layers["raw_sales"] == "raw" and layers["sales_long"] == "staging" and layers["features"] == "feature-store"
    assert layers["demand_model"] == "model" and layers["forecasts"] == "forecast"
    assert layers["inventory_plan"] == "planning" and layers["backtest_report"] == "evaluation"


def test_every_asset_reports_rows_schema_and_size(data_dir):
    result = run_pipeline(data_dir)
    assert result.success
    metadata = {
        e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert set(metadata) == FEATURE_STORE_ASSETS
    for name in FEATURE_STORE_ASSETS:
        held = tables.named(name).files(data_dir / "warehouse")
        assert metadata[name]["dagster/row_count"].value == held.rows > 0
        columns = metadata[name]["dagster/column_schema"].value.columns
        assert [c.name for c in columns] == held.schema.names
        undescribed = [c.name for c in columns if not c.description]
        assert undescribed == [], f"{name}: columns without a description: {undescribed[:5]}"
        assert {"preview", "size_mb", "path"} <= set(metadata[name])
    for name in FEATURE_STORE_ASSETS - {"feature_catalog", "raw_sell_prices", "raw_sales"}:
        assert metadata[name]["first_date"].value <= metadata[name]["last_date"].value
    wide = pq.read_schema(table_path(data_dir / "warehouse", "raw_sales")).names
    assert (metadata["raw_sales"]["first_day"].value, metadata["raw_sales"]["last_day"].value) == ("d_1", wide[-1])
    assert metadata["sales_long"]["series"].value == 30
    types = {c.name: c.type for c in metadata["sales_long"]["dagster/column_schema"].value.columns}
    assert (types["id"], types["date"], types["units"]) == ("category of string", "date", "int32")
    assert metadata["features"]["future_days"].value == 28
    flags = feature_rows(data_dir / "warehouse")[["id", "stocked_out"]]
    flagged = flags[flags["stocked_out"] == 1]
    assert metadata["features"]["stocked_out_days"].value == len(flagged)
    assert metadata["features"]["series_with_stock_outs"].value == flagged["id"].nunique()


def test_genuine_m5_subset_passes_every_check_and_runs_through(tmp_path, real_subset):
    shutil.copytree(real_subset, tmp_path / "raw")
    result = run_pipeline(tmp_path)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())

    long = pd.read_parquet(table_path(tmp_path / "warehouse", "sales_long"))
    assert len(long) == 10 * 1913 and long["id"].nunique() == 10
    features = feature_rows(tmp_path / "warehouse")
    # The validation file ends on 2016-04-24 (d_1913); the store reaches 28 days past it.
    assert str(features["date"].max()) == "2016-05-22"
    real = pd.read_csv(real_subset / "sales_train_validation.csv").set_index("id")
    series = "FOODS_1_001_CA_3_validation"
    row = features[(features["id"] == series) & (features["date"].astype(str) == "2016-04-24")].iloc[0]
    assert row["units"] == real.loc[series, "d_1913"] and row["units_lag_28"] == real.loc[series, "d_1885"]


_parquet_opened_by_python: list[str] = []
_recording = False


def _record_parquet_opens(event: str, args: tuple) -> None:
    if _recording and event == "open" and str(args[0]).endswith(".parquet") and "r" in str(args[1] or "r"):
        _parquet_opened_by_python.append(str(args[0]))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``m5 run`` on an empty data folder, once: its exit code, what it printed, and every Parquet
    file that Python itself opened for reading meanwhile."""
    global _recording
    tmp_path = tmp_path_factory.mktemp("demo-run")
    os.makedirs(tmp_path / "home")
    out, err = io.StringIO(), io.StringIO()
    sys.addaudithook(_record_parquet_opens)  # a hook cannot be removed: the flag scopes it
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
        patch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        _recording = True
        try:
            code = main(["run", "--scale", "tiny"])
        finally:
            _recording = False
    return SimpleNamespace(
        code=code,
        out=out.getvalue(),
        err=err.getvalue(),
        data=tmp_path / "data",
        opened=list(_parquet_opened_by_python),
    )


def test_m5_run_hands_arrow_no_python_file_object_so_it_cannot_abort_at_exit(demo_run):
    # An Arrow pool thread may drop a scan's last reference after the read returned; if that
    # reference is a Python file object, dropping it takes the GIL, and during interpreter exit
    # the thread is killed inside a C++ destructor: "terminate called without an active
    # exception", exit 134 (issue 23, seen in a core dump of a real abort). Parquet files must be
    # opened by Arrow or DuckDB, never as Python file objects.
    assert demo_run.code == 0
    assert demo_run.opened == [], f"Parquet files opened as Python file objects: {sorted(set(demo_run.opened))[:5]}"


def test_m5_run_generates_the_demo_data_when_raw_is_empty_and_builds_everything(demo_run):
    tmp_path = demo_run.data.parent
    assert demo_run.code == 0
    captured = SimpleNamespace(out=demo_run.out, err=demo_run.err)
    out = captured.out
    assert "generating the 'tiny' demo data set" in out and "checks: 14 of 14 passed" in out
    assert (tables.FEATURES.folder(tmp_path / "data" / "warehouse") / MANIFEST).exists()
    # The demo data ends yesterday, so the newest forecast partition is today's.
    today = dt.date.today()
    assert f"training model partition {today.replace(day=1)}" in out
    assert (
        "seasonal_naive" in out and "promoted: True (no promoted model serves this cutoff yet), champion: True" in out
    )
    assert f"issuing the newest forecast ({today} .. {today})" in out
    assert (tmp_path / "data" / "warehouse" / "forecasts" / f"forecast_date={today}" / "data.parquet").exists()
    # Then a 7-partition backtest, scored against actuals next to seasonal naive.
    assert "backtest, 7 forecast dates" in out and "mean WRMSSE" in out
    # Each line once, and no empty check counts.
    assert out.count("run history: `make ui`") == 1 and "checks: 0 of 0" not in out
    assert "warning" not in (out + captured.err).lower()
    # Training says what it is doing, in the terminal too.
    assert f"training {today.replace(day=1)}: early stopping chose" in out
    assert "Downloading artifacts" not in captured.err


def _runs_in(home: Path) -> int:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return len(instance.get_runs())


def test_a_second_m5_run_with_nothing_changed_skips_every_run_and_says_which(demo_run, monkeypatch, capsys):
    """A rerun on unchanged files and code launches no run: each of the first run's runs (the
    feature store, each model, the newest forecast, the backtest's forecasts and their scoring) is
    named as up to date, and the backtest table is still printed from what they wrote."""
    home = demo_run.data.parent / "home"
    monkeypatch.setenv("M5_DATA_DIR", str(demo_run.data))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = _runs_in(home)

    assert main(["run", "--scale", "tiny"]) == 0

    out = capsys.readouterr().out
    assert _runs_in(home) == before
    assert out.count("up to date, skipped") == before
    assert "build_feature_store: up to date, skipped" in out
    assert f"train_model {dt.date.today().replace(day=1)}: up to date, skipped" in out
    assert f"issue_forecast {dt.date.today()}..{dt.date.today()}: up to date, skipped" in out
    assert f"{before} of {before} runs were up to date and skipped" in out and "mean WRMSSE" in out


_LOADED_JOBS = """{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
  ... on RepositoryLocation { repositories { name jobs { name pipelineSnapshotId runs { runId } } } } } } } } }"""
_RUNS = """{ runsOrError { ... on Runs { results { runId jobName pipelineSnapshotId
  repositoryOrigin { repositoryName repositoryLocationName } } } } }"""


def test_the_runs_of_m5_run_are_listed_under_their_jobs_and_re_execute_as_the_same_version(demo_run, tmp_path):
    """The webserver `make ui` starts, on the same folder and instance, lists each run of
    ``m5 run`` under its job, and matches it to the loaded job by origin and snapshot: the match
    the UI makes before it offers re-execution without a "may be a different version" warning."""
    port = servers.free_port()
    env = os.environ | {"M5_DATA_DIR": str(demo_run.data), "DAGSTER_HOME": str(demo_run.data.parent / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    webserver = [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
    with servers.started([*webserver, "-w", str(ROOT / "workspace.yaml")], env, tmp_path / "web.log", cwd=ROOT) as web:
        servers.wait_until(lambda: servers.http_ok(f"http://127.0.0.1:{port}/server_info"), web, "webserver")
        (entry,) = _graphql(port, _LOADED_JOBS)["workspaceOrError"]["locationEntries"]
        (repository,) = entry["locationOrLoadError"]["repositories"]
        loaded = {job["name"]: job for job in repository["jobs"]}
        runs = _graphql(port, _RUNS)["runsOrError"]["results"]
    assert {run["jobName"] for run in runs} == {
        "build_feature_store",
        "train_model",
        "issue_forecast",
        "score_forecast",
    }
    for run in runs:
        job = loaded[run["jobName"]]
        assert run["runId"] in {listed["runId"] for listed in job["runs"]}, (
            f"{run['jobName']} does not list {run['runId']}"
        )
        assert run["repositoryOrigin"] == {
            "repositoryName": repository["name"],
            "repositoryLocationName": entry["name"],
        }
        assert run["pipelineSnapshotId"] == job["pipelineSnapshotId"], f"{run['jobName']}: another version of the job"


def test_the_location_name_runs_are_created_with_is_the_one_both_workspaces_load():
    from m5_assets.defs.launch import LOCATION_NAME

    for workspace in (ROOT / "workspace.yaml", ROOT / "deploy" / "workspace.yaml"):
        (entry,) = yaml.safe_load(workspace.read_text())["load_from"]
        assert next(iter(entry.values()))["location_name"] == LOCATION_NAME, workspace


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", json.dumps({"query": query}).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def test_a_changed_raw_file_or_code_reruns_the_feature_store_and_a_deleted_output_too(
    tmp_path, tiny_raw, monkeypatch, capsys
):
    from m5_assets.defs import up_to_date

    shutil.copytree(tiny_raw, tmp_path / "data" / "raw")
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    def rerun() -> bool:
        """Whether ``m5 run --skip-model`` built the feature store again."""
        before = _runs_in(tmp_path)
        assert main(["run", "--skip-model"]) == 0
        ran = _runs_in(tmp_path) > before
        assert ("build_feature_store: up to date, skipped" in capsys.readouterr().out) != ran
        return ran

    assert rerun()
    assert not rerun()
    calendar = tmp_path / "data" / "raw" / "calendar.csv"
    calendar.write_text(calendar.read_text())  # same rows, written again: it may have changed
    assert rerun()
    assert not rerun()
    monkeypatch.setattr(up_to_date, "code_version", lambda: "a changed line of code")
    assert rerun()
    assert not rerun()
    (tables.FEATURES.folder(tmp_path / "data" / "warehouse") / MANIFEST).unlink()
    assert rerun()
    assert not rerun()
    # Days declared genuine change what the features cap: a rerun must not call them up to date.
    (tmp_path / "data" / "known_genuine_days.csv").write_text("item_id,store_id,date\n")
    assert rerun()
    assert not rerun()


def test_m5_run_without_a_dagster_home_says_how_to_give_it_one_before_any_work(tmp_path, monkeypatch, capsys):
    from m5_assets import library_env

    for name in ("DAGSTER_HOME", "M5_DAGSTER_STORAGE", "M5_DAGSTER_ARTIFACTS", "M5_DAGSTER_LOGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "DAGSTER_HOME is not set" in capsys.readouterr().err
    assert not (tmp_path / "data" / "raw").exists()  # no demo data generated, no run started
    # From the project's folder, as make runs it, the project's dagster.yaml is the instance's.
    monkeypatch.chdir(ROOT)
    assert library_env.point_dagster_instance_at(data_paths(tmp_path / "data")) is None
    assert os.environ["DAGSTER_HOME"] == str(ROOT)


def test_m5_run_with_a_partial_file_set_names_the_missing_file_and_writes_nothing(
    tmp_path, tiny_raw, monkeypatch, capsys
):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for name in ("sales_train_evaluation.csv", "sell_prices.csv"):
        shutil.copy(tiny_raw / name, raw / name)
    before = {p.name: p.read_bytes() for p in raw.iterdir()}
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    assert main(["run", "--scale", "tiny"]) == 2

    assert "missing raw file(s) calendar.csv" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in raw.iterdir()} == before  # nothing overwritten, nothing added
    assert not (tmp_path / "data" / "warehouse").exists()


def test_the_generator_refuses_a_folder_that_holds_any_csv(tmp_path, capsys):
    (tmp_path / "export.csv").write_text("keep me\n")
    assert main(["generate", "--scale", "tiny", "--out", str(tmp_path)]) == 2
    assert "already holds export.csv" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.csv"]
    assert (tmp_path / "export.csv").read_text() == "keep me\n"


def test_m5_run_reports_a_data_error_as_its_message_without_stack_traces(tmp_path, tiny_raw, monkeypatch, capsys):
    raw = tmp_path / "data" / "raw"
    shutil.copytree(tiny_raw, raw)
    sales = raw / "sales_train_evaluation.csv"
    lines = sales.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",1.5"  # the last day of the second series
    sales.write_text("\n".join(lines) + "\n")
    last_day = lines[0].rsplit(",", 1)[1]
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    assert main(["run", "--skip-model"]) == 1

    captured = capsys.readouterr()
    assert (
        f"FAILED raw_sales.parses:\n    sales_train_evaluation.csv, line 3, column '{last_day}': values must be whole numbers"
        in captured.out
    )
    printed = captured.out + captured.err
    assert "Traceback" not in printed and "Stack Trace" not in printed


def test_m5_run_reports_a_failed_blocking_check_by_its_message_without_a_stack_trace(
    tmp_path, tiny_raw, monkeypatch, capsys
):
    raw = tmp_path / "data" / "raw"
    shutil.copytree(tiny_raw, raw)
    prices = raw / "sell_prices.csv"
    lines = prices.read_text().splitlines()
    lines[7] = lines[7].rsplit(",", 1)[0] + ",0.0"
    prices.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    assert main(["run", "--skip-model"]) == 1

    captured = capsys.readouterr()
    assert (
        "FAILED raw_sell_prices.prices_valid:\n    sell_prices.csv, line 8, column 'sell_price': must be greater than 0"
        in captured.out
    )
    assert (
        "step raw_sell_prices failed: raw_sell_prices refused by its check(s) prices_valid; the table of the last good run stays"
        in captured.out
    )
    printed = captured.out + captured.err
    assert "Stack Trace" not in printed and "Traceback" not in printed and 'File "' not in printed


def test_a_second_m5_run_on_the_same_folder_waits_for_the_first_naming_its_pid(tmp_path):
    """Two runs at once on a fresh folder raced (both generating the demo set, both creating
    MLflow's SQLite store): the second now waits for the first, then finds its work done."""
    import time

    env = {**os.environ, "M5_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "m5_assets.cli", "run", "--skip-model", "--scale", "tiny"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = tmp_path / "data" / ".m5-run.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip() == str(first.pid)):  # the first holds the folder
        assert time.monotonic() < deadline and first.poll() is None, "the first run never took the folder"
        time.sleep(0.05)
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second_out, _ = second.communicate(timeout=600)
    first_out, _ = first.communicate(timeout=600)

    assert first.returncode == 0, first_out[-3000:]
    assert second.returncode == 0, second_out[-3000:]
    assert f"another m5 run (PID {first.pid}) is using {tmp_path / 'data'}: waiting for it to finish" in second_out
    assert "generating the 'tiny' demo data set" in first_out and "generating" not in second_out
    assert "checks: 14 of 14 passed" in first_out
    assert "using the raw files in" in second_out and "build_feature_store: up to date, skipped" in second_out
    assert lock.read_text() == ""  # released


def test_loading_the_code_location_prints_no_warning():
    """Known beta APIs are silenced where they are used; anything new still shows."""
    code = "import warnings; warnings.simplefilter('default'); import m5_assets.definitions"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Warning" not in done.stderr, done.stderr


def test_the_instance_runs_one_run_at_a_time_and_the_location_is_named_m5_assets(tmp_path, monkeypatch):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    for name, value in data_paths(tmp_path / "data").dagster_instance_env().items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
    (location,) = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert location["python_module"]["location_name"] == "m5_assets"


def test_two_data_folders_keep_their_own_run_history(tmp_path, tiny_raw, monkeypatch):
    """m5 run with the repository's dagster.yaml, once per data folder: each folder's instance
    holds its own run and nothing lands beside the instance config."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name in data_paths(tmp_path).dagster_instance_env():
        monkeypatch.delenv(name, raising=False)
    for folder in ("first", "second"):
        shutil.copytree(tiny_raw, tmp_path / folder / "raw")
        monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / folder))
        assert main(["run", "--skip-model"]) == 0
        for name in data_paths(tmp_path).dagster_instance_env():
            os.environ.pop(name, None)  # m5 run set them for its own folder
    runs = {}
    for folder in ("first", "second"):
        env = data_paths(tmp_path / folder).dagster_instance_env()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs[folder] = {r.run_id for r in instance.get_runs()}
        assert (tmp_path / folder / "dagster" / "storage").is_dir()
    assert len(runs["first"]) == len(runs["second"]) == 1 and not runs["first"] & runs["second"]
    assert sorted(p.name for p in home.iterdir()) == ["dagster.yaml"]


def test_m5_run_scores_the_backtest_when_only_its_inventory_plans_were_withheld_and_exits_1(
    tmp_path, monkeypatch, capsys
):
    from m5_assets.forecast import planning

    def every_order_beyond(planned, highest_day):  # as a blown-up forecast would make them
        return pd.DataFrame(
            {
                "id": planned["id"],
                "column": "reorder_point",
                "value": planned["reorder_point"],
                "bound": 0.0,
                "ratio": np.inf,
            }
        )

    monkeypatch.setattr(planning, "orders_beyond_history", every_order_beyond)
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    os.makedirs(tmp_path / "home")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    assert main(["run", "--scale", "tiny"]) == 1
    out = capsys.readouterr().out
    assert "inventory_plan not published" in out and "backtest, 7 forecast dates" in out and "mean WRMSSE" in out
    assert "inventory plans were withheld (see above)" in out
    assert not list((tmp_path / "data" / "warehouse").glob("inventory_plan/*/data.parquet"))
