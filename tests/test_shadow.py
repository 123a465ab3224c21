"""A challenger the gate refused issues in shadow beside the champion, is scored beside it, and can
be promoted by hand."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest
from forecasting import QUICK, WEAK, copy_data, issue, metadata, score, train
from mlflow.tracking import MlflowClient

from m5_assets import reader, tables
from m5_assets.definitions import build_definitions
from m5_assets.defs.promotion import PROMOTE_MODEL_JOB
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import CATALOG_VERSION
from m5_assets.forecast.publish import NOT_RECORDED, catalog_warnings
from m5_assets.model import registry

APRIL = "2016-04-01"
DAY, NEXT = dt.date(2016, 4, 10), dt.date(2016, 4, 11)


@pytest.fixture(scope="module")
def challenged(tmp_path_factory, built):
    """Tiny data with an April champion (version 1) and a weaker April model the gate refused (version 2)."""
    data_dir = tmp_path_factory.mktemp("challenged")
    copy_data(built["tiny"].parent, data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        assert metadata(train(data_dir, APRIL, QUICK))["champion"]
        refused = metadata(train(data_dir, APRIL, WEAK))
        assert not refused["promoted"], refused["promotion_decision"]
        issued = issue(data_dir, DAY.isoformat())
        scored = score(data_dir, DAY.isoformat())
        yield {"dir": data_dir, "issued": issued, "scored": scored}


def test_the_challenger_issues_beside_the_champion_never_over_it(challenged):
    root = challenged["dir"] / "warehouse"
    champion = reader.read_partition(root, tables.FORECASTS, DAY)
    shadow = reader.read_partition(root, tables.FORECASTS_SHADOW, DAY)
    assert set(champion["model_version"]) == {"1"} and set(shadow["model_version"]) == {"2"}
    assert len(shadow) == len(champion) and not shadow["forecast"].equals(champion["forecast"])
    (event,) = [
        e
        for e in challenged["issued"].get_asset_materialization_events()
        if e.asset_key.to_user_string() == "forecasts"
    ]
    assert event.materialization.metadata["shadow_model_version"].value == "2"


def test_scoring_puts_the_challenger_beside_the_champion(challenged):
    root = challenged["dir"] / "warehouse"
    (row,) = reader.read_accuracy(root).to_dict(orient="records")
    assert row["model_version"] == "1" and row["shadow_model_version"] == "2"
    assert row["shadow_wrmsse"] > 0 and row["shadow_wrmsse"] != row["wrmsse"]
    (event,) = challenged["scored"].get_asset_materialization_events()
    assert event.materialization.metadata["shadow_wrmsse"].value == pytest.approx(round(row["shadow_wrmsse"], 4))


def test_without_a_challenger_nothing_issues_in_shadow(model_data):
    train(model_data, APRIL, QUICK)
    issue(model_data, DAY.isoformat())
    assert reader.partition_days(model_data / "warehouse", tables.FORECASTS_SHADOW) == []
    scored = score(model_data, DAY.isoformat())
    (row,) = reader.read_accuracy(model_data / "warehouse").to_dict(orient="records")
    assert pd.isna(row["shadow_model_version"]) and pd.isna(row["shadow_wrmsse"]) and scored.success


def _promote(data_dir, version: str, reason: str) -> dg.ExecuteInProcessResult:
    defs = build_definitions(M5Data(data_dir=str(data_dir)))
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(PROMOTE_MODEL_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {"promote_version": {"config": {"version": version, "reason": reason}}}},
        )


def test_promoting_the_challenger_by_hand_moves_the_champion_and_records_why(challenged):
    data_dir = challenged["dir"]
    assert not _promote(data_dir, "2", "   ").success  # a reason is required
    assert _promote(data_dir, "2", "did better in shadow on 2016-04-10").success
    client = MlflowClient(tracking_uri=registry.tracking_uri(data_dir / "mlflow"))
    champion = client.get_model_version_by_alias(registry.MODEL_NAME, registry.CHAMPION)
    assert (
        str(champion.version) == "2"
        and champion.tags["decision"] == "promoted by hand: did better in shadow on 2016-04-10"
    )
    assert "promoted by hand" in champion.description
    stored = reader.read_partition(data_dir / "warehouse", tables.MODEL_CARDS, "2").iloc[0]
    assert bool(stored["promoted"]) and stored["promotion_decision"].startswith("promoted by hand")
    # It now serves, and nothing is left to shadow it.
    issue(data_dir, NEXT.isoformat())
    assert set(reader.read_partition(data_dir / "warehouse", tables.FORECASTS, NEXT)["model_version"]) == {"2"}
    assert NEXT not in reader.partition_days(data_dir / "warehouse", tables.FORECASTS_SHADOW)


def test_a_forecast_names_the_feature_catalog_its_model_learned_on_and_warns_when_the_store_moved_on(challenged):
    (event,) = [
        e
        for e in challenged["issued"].get_asset_materialization_events()
        if e.asset_key.to_user_string() == "forecasts"
    ]
    assert event.materialization.metadata["model_feature_catalog"].value == CATALOG_VERSION
    row = {"model_version": "1", "model_cutoff": APRIL, "model_feature_catalog": CATALOG_VERSION}
    assert catalog_warnings([row, row]) == []
    older = [
        row,
        {**row, "model_version": "0", "model_feature_catalog": NOT_RECORDED},
        {**row, "model_version": "0", "model_feature_catalog": NOT_RECORDED},
    ]
    (warning,) = catalog_warnings(older)
    assert (
        "model version 0" in warning
        and f"version {CATALOG_VERSION}" in warning
        and f"demand_model for {APRIL}" in warning
    )
