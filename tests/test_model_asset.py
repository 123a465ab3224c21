import datetime as dt
import json
import shutil
import time
from collections.abc import Mapping

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from forecasting import QUICK, metadata, run_pipeline, train
from mlflow.tracking import MlflowClient

from m5_assets import tables
from m5_assets.features.catalog import CATALOG_VERSION
from m5_assets.model import registry
from m5_assets.model.selection import BANDS
from m5_assets.table_files import read_store_files

CUTOFF = "2016-05-01"
# Twenty boosting rounds: on the weekly data below better than seasonal naive (0.21 vs 0.23) and
# clearly worse than QUICK (0.19).
MEDIUM = {"learning_rate": 0.1, "max_rounds": 20, "early_stopping_rounds": 5, "train_days": 365}
# One tiny boosting step: the model has learned nothing beyond each series' level.
BAD = {"learning_rate": 0.001, "max_rounds": 1, "early_stopping_rounds": 1, "train_days": 365}


def _train(data_dir, config: Mapping[str, object]) -> dg.ExecuteInProcessResult:
    return train(data_dir, CUTOFF, config, raise_on_error=False)


def _client(data_dir) -> MlflowClient:
    return MlflowClient(tracking_uri=registry.tracking_uri(data_dir / "mlflow"))


def test_a_model_partition_is_one_mlflow_run_with_params_metrics_artifacts_and_a_version(model_data, monkeypatch):
    from m5_assets.model import pipeline

    uri_before = mlflow.get_tracking_uri()
    fit: dict[str, float] = {}
    real_train = pipeline.train

    def timed_train(*args, **kwargs):
        fit["started"] = time.time()
        try:
            return real_train(*args, **kwargs)
        finally:
            fit["ended"] = time.time()

    monkeypatch.setattr(pipeline, "train", timed_train)
    result = _train(model_data, QUICK)
    assert result.success
    # Everything went through the resource's client: no process-wide tracking state was set.
    assert mlflow.get_tracking_uri() == uri_before and mlflow.active_run() is None
    shown = metadata(result)
    client = _client(model_data)
    run = client.get_run(shown["mlflow_run_id"])
    assert run.data.params["cutoff"] == CUTOFF and run.data.params["learning_rate"] == "0.1"
    assert run.data.params["feature_catalog_version"] == str(CATALOG_VERSION)
    assert run.data.tags["cutoff"] == CUTOFF
    for method in (
        "issued",
        "lightgbm",
        "demand_level",
        "naive",
        "seasonal_naive",
        "moving_average_28",
        "exponential_smoothing",
    ):
        assert f"wrmsse_{method}" in run.data.metrics
    assert run.data.metrics["wrmsse_issued"] == pytest.approx(shown["wrmsse"], abs=1e-4)
    # The issue rule is chosen from the model alone down: over its validation windows it is never
    # worse than the model alone by its criterion (mean WRMSSE + mean RMSSE).
    metrics = run.data.metrics
    assert metrics["validation_windows"] == 1  # the first model of this data folder: no earlier window stored
    assert metrics["windows_criterion_chosen"] <= metrics["windows_criterion_model_alone"] + 1e-9
    assert metrics["windows_criterion_chosen"] == pytest.approx(
        metrics["windows_wrmsse_chosen"] + metrics["windows_mean_rmsse_chosen"]
    )
    assert run.data.tags["issued_as"] == shown["issued_as"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {
        "feature_importance.csv",
        "validation_wrmsse_per_level.csv",
        "issue_rule.json",
        "issue_rule_by_band.csv",
        "intervals.json",
        "model",
        "booster",
    } <= artifacts
    assert run.info.status == "FINISHED"
    rule = registry.load_issue_rule(client, run.info.run_id)
    assert rule.relative and rule.chosen_because and len(rule.segments) == len(BANDS)
    assert [s.model_weight for s in rule.segments] == [metrics[f"model_weight_band_{b}"] for b in range(len(BANDS))]
    version = client.get_model_version_by_alias(registry.MODEL_NAME, registry.CHAMPION)
    assert version.run_id == run.info.run_id and shown["promoted"] and shown["champion"]
    # The registry alone says what the version is and whether it may issue.
    assert run.info.run_name == f"demand_model {CUTOFF}"
    assert (
        version.tags["promoted"] == "True"
        and version.tags["cutoff"] == CUTOFF
        and version.tags["issued_as"] == shown["issued_as"]
    )
    assert float(version.tags["validation_wrmsse"]) == pytest.approx(shown["wrmsse"], abs=1e-4)
    assert "promoted: may issue forecasts" in version.description
    assert shown["mlflow_run"].startswith("http://127.0.0.1:5000/#/experiments/")
    assert str(model_data / "mlflow" / "artifacts") in run.info.artifact_uri
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"beats_seasonal_naive": True}
    # The run spans the training (opened before it), and says where its code and data came from.
    assert run.info.start_time / 1000 <= fit["started"] and run.info.end_time / 1000 >= fit["ended"]
    assert run.data.tags["mlflow.source.type"] == "JOB" and run.data.tags["mlflow.source.name"].startswith(
        "m5-forecasting"
    )
    (used,) = run.inputs.dataset_inputs
    files = read_store_files(model_data / "warehouse" / "features")
    assert (used.dataset.name, used.dataset.digest) == ("features", files.digest())
    assert json.loads(used.dataset.source)["uri"] == files.location.as_uri()
    assert {t.key: t.value for t in used.tags}["mlflow.data.context"] == "training"
    # The registry and the experiment describe themselves; the UI opens the experiment as model training.
    registered = client.get_registered_model(registry.MODEL_NAME)
    assert registered.description == registry.MODEL_DESCRIPTION and registered.tags == registry.MODEL_TAGS
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == registry.EXPERIMENT_DESCRIPTION


def test_a_training_that_fails_is_recorded_as_a_failed_run(model_data, monkeypatch):
    from m5_assets.model import pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("LightGBM ran out of memory")

    monkeypatch.setattr(pipeline, "train", broken)
    assert not _train(model_data, QUICK).success
    client = _client(model_data)
    (experiment,) = [e for e in client.search_experiments() if e.name == registry.EXPERIMENT]
    newest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert newest.info.run_name == f"demand_model {CUTOFF}" and newest.info.status == "FAILED"


def test_a_month_chooses_its_issue_rule_on_the_window_the_previous_months_model_served(model_data):
    assert train(model_data, "2016-04-01", QUICK).success
    may = _train(model_data, QUICK)
    assert may.success
    client = _client(model_data)
    (run,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name(registry.EXPERIMENT).experiment_id])
        if r.data.tags["cutoff"] == CUTOFF
    ]
    # April's registered model forecast the 28 days before May 1 (issued on April 3, out of
    # sample); March has no model in this folder, so that is the one window.
    assert run.data.metrics["validation_windows"] == 1
    rule = registry.load_issue_rule(client, run.info.run_id)
    assert "(cutoffs 2016-05-01)" in rule.chosen_because and not rule.chosen_because.startswith("no earlier model")
    april = [v for v in registry.registered_versions(client) if v.cutoff == dt.date(2016, 4, 1)]
    assert len(april) == 1


def test_promotion_gate_takes_the_first_a_better_one_and_refuses_a_worse_one(weekly_data):
    # On weekly data more rounds learn more of the week; on the generated data the level blend
    # brings a short model within 1 % of a full one.
    model_data = weekly_data
    first = metadata(_train(model_data, MEDIUM))
    assert (
        first["promoted"]
        and first["champion"]
        and first["promotion_decision"] == "no promoted model serves this cutoff yet"
    )

    better = metadata(_train(model_data, QUICK))
    assert better["promoted"] and better["champion"], better["promotion_decision"]
    assert better["serving_version"] == first["model_version"]
    assert better["wrmsse"] <= 0.99 * better["serving_wrmsse_same_window"]
    # The card keeps the like-for-like score the dashboard and the API show beside the model's own.
    card = pd.read_parquet(tables.MODEL_CARDS.path(model_data / "warehouse", better["model_version"])).iloc[0]
    assert card["serving_version"] == first["model_version"]
    assert card["serving_wrmsse_same_window"] == pytest.approx(better["serving_wrmsse_same_window"], abs=1e-4)

    worse = metadata(_train(model_data, MEDIUM))
    assert not worse["promoted"] and not worse["champion"]
    refused = _client(model_data).get_model_version(registry.MODEL_NAME, worse["model_version"])
    assert refused.tags["promoted"] == "False" and refused.tags["decision"] == "does not beat the serving model by 1 %"
    assert "not promoted: never issues forecasts" in refused.description
    assert worse["promotion_decision"] == "does not beat the serving model by 1 %"
    assert worse["serving_version"] == better["model_version"]
    client = _client(model_data)
    assert (
        str(client.get_model_version_by_alias(registry.MODEL_NAME, registry.CHAMPION).version)
        == better["model_version"]
    )


@pytest.fixture
def weekly_data(tmp_path, tiny_raw, monkeypatch):
    """The tiny data with every series selling mostly on Saturdays."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copytree(tiny_raw, tmp_path / "raw")
    sales_file = tmp_path / "raw" / "sales_train_evaluation.csv"
    sales = pd.read_csv(sales_file)
    calendar = pd.read_csv(tmp_path / "raw" / "calendar.csv", usecols=["d", "wday"]).set_index("d")
    days = [c for c in sales.columns if c.startswith("d_")]
    # Poisson around 6 on Saturdays (wday 1 in M5) and 0.5 on other days: seasonal naive is good,
    # a flat level is not, and a model learns the week in rounds.
    mean = np.where(calendar.loc[days, "wday"].to_numpy() == 1, 6.0, 0.5)
    sales[days] = np.random.default_rng(3).poisson(np.broadcast_to(mean, (len(sales), len(days))))
    sales.to_csv(sales_file, index=False)
    assert run_pipeline(tmp_path).success
    return tmp_path


def test_a_model_worse_than_seasonal_naive_fails_its_check_and_is_never_champion(weekly_data):
    result = _train(weekly_data, BAD)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and "seasonal naive" in evaluation.description
    shown = metadata(result)
    assert not shown["promoted"] and not shown["champion"]
    assert shown["promotion_decision"] == "does not beat seasonal naive"


MAY = dt.date(2016, 5, 1)


@pytest.mark.parametrize(
    ("challenger", "naive", "serving", "champion_cutoff", "promoted", "champion", "reason"),
    [
        (0.8, 0.9, None, None, True, True, "no promoted model serves this cutoff yet"),
        (0.79, 0.9, 0.8, "2016-04-01", True, True, "beats the serving model by at least 1 %"),
        (0.795, 0.9, 0.8, "2016-04-01", False, False, "does not beat the serving model by 1 %"),
        # Better than what serves May, but the champion was trained for June: May's own months only.
        (0.79, 0.9, 0.8, "2016-06-01", True, False, "beats the serving model by at least 1 %"),
        (0.79, 0.9, 0.8, "2016-05-01", True, True, "beats the serving model by at least 1 %"),
        # Seasonal naive first, whatever serves.
        (0.9, 0.9, None, None, False, False, "does not beat seasonal naive"),
        (0.5, 0.4, 0.8, "2016-04-01", False, False, "does not beat seasonal naive"),
    ],
)
def test_the_promotion_gate(challenger, naive, serving, champion_cutoff, promoted, champion, reason):
    cutoff = dt.date.fromisoformat(champion_cutoff) if champion_cutoff else None
    decision = registry.gate(MAY, challenger, naive, serving, cutoff)
    assert (decision.promoted, decision.champion, decision.reason) == (promoted, champion, reason)


def test_mlflow_links_follow_the_tracking_server_or_the_configured_ui(monkeypatch):
    monkeypatch.delenv("M5_MLFLOW_UI_URL", raising=False)
    assert registry.run_url("sqlite:////data/mlflow.db", "1", "abc") == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    assert registry.run_url("http://mlflow:5000/", "1", "abc") == "http://mlflow:5000/#/experiments/1/runs/abc"
    monkeypatch.setenv("M5_MLFLOW_UI_URL", "https://ml.example.internal/")
    assert registry.ui_base("http://mlflow:5000") == "https://ml.example.internal"


def test_issuing_loads_the_registered_bundle_in_one_download_and_older_versions_still_load(model_data, monkeypatch):
    assert _train(model_data, QUICK).success
    client = _client(model_data)
    (version,) = registry.promoted_versions(client)
    downloads = []
    real = MlflowClient.download_artifacts

    def counted(self, run_id, path, dst_path=None):
        downloads.append(path)
        return real(self, run_id, path, dst_path)

    monkeypatch.setattr(MlflowClient, "download_artifacts", counted)
    bundled = registry.load_issuing_model(client, version)
    assert downloads == [registry.PYFUNC_MODEL]
    # A version registered before the pyfunc bundled its parts: the run's loose artifacts, as then.
    downloads.clear()
    monkeypatch.setattr(registry, "PYFUNC_MODEL", "no-such-artifact")
    loose = registry.load_issuing_model(client, version)
    assert set(downloads) >= {"no-such-artifact", registry.INTERVALS_ARTIFACT, registry.BOOSTER_MODEL}
    rows = np.random.default_rng(0).random((50, bundled.booster.num_feature()))
    np.testing.assert_allclose(bundled.booster.predict(rows), loose.booster.predict(rows))
    assert bundled.rule.to_json() == loose.rule.to_json()
    assert bundled.calibration.to_json() == loose.calibration.to_json()
    assert (bundled.version, bundled.cutoff, bundled.feature_catalog) == (loose.version, loose.cutoff, CATALOG_VERSION)
