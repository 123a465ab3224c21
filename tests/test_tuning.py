import dagster as dg
import pandas as pd
import pytest
from forecasting import QUICK, metadata
from mlflow.tracking import MlflowClient

from m5_assets.definitions import build_definitions
from m5_assets.defs.resources import M5Data
from m5_assets.defs.tuning import TUNE_MODEL_JOB
from m5_assets.model import registry
from m5_assets.model.tuning import SEARCH_SPACE

CUTOFF = "2016-04-01"


def _tune(data_dir, budget_minutes: float, max_trials: int) -> dg.ExecuteInProcessResult:
    defs = build_definitions(M5Data(data_dir=str(data_dir)))
    config = {**QUICK, "budget_minutes": budget_minutes, "max_trials": max_trials}
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(TUNE_MODEL_JOB).execute_in_process(
            instance=instance,
            partition_key=CUTOFF,
            run_config={"ops": {"model_tuning": {"config": config}}},
        )


def test_a_search_logs_each_trial_as_a_nested_mlflow_run_and_suggests_the_best(model_data):
    found = metadata(_tune(model_data, budget_minutes=30, max_trials=3))
    assert found["trials"] == 3 and found["best_wrmsse"] <= found["default_wrmsse"]
    client = MlflowClient(tracking_uri=registry.tracking_uri(model_data / "mlflow"))
    parent = client.get_run(found["mlflow_run_id"])
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 3
    scores = sorted(c.data.metrics["wrmsse"] for c in children)
    assert scores[0] == pytest.approx(parent.data.metrics["best_wrmsse"])
    # The first trial is where the search starts: the launchpad's settings.
    first = next(c for c in children if c.info.run_name == "trial 0")
    assert float(first.data.params["learning_rate"]) == QUICK["learning_rate"]
    assert set(SEARCH_SPACE) <= set(first.data.params)
    trials = pd.read_csv(client.download_artifacts(parent.info.run_id, "trials.csv"))
    assert len(trials) == 3 and trials["wrmsse"].min() == pytest.approx(found["best_wrmsse"], abs=1e-4)
    assert "demand_model" in found["demand_model_launchpad_config"]
    # A search registers nothing: only demand_model partitions make model versions.
    assert client.search_model_versions(f"name='{registry.MODEL_NAME}'") == []


def test_the_time_budget_stops_the_search_after_the_trial_under_way(model_data):
    found = metadata(_tune(model_data, budget_minutes=0.001, max_trials=50))
    assert found["trials"] == 1
