"""The rolling-origin backtest: its dates, its report and targets, and the asset and job that run it."""

import datetime as dt
from itertools import pairwise

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from forecasting import QUICK, resource

from m5_assets import reader, tables
from m5_assets.backtest import report
from m5_assets.backtest.origins import backtest_origins, by_cutoff, model_cutoff
from m5_assets.definitions import build_definitions
from m5_assets.defs.backtest import BACKTEST_JOB, MEETS_TARGETS, MODEL_NAME
from m5_assets.features.catalog import HORIZON
from m5_assets.model import registry
from m5_assets.model.selection import WINDOWS, months_before


def test_53_origins_every_7_days_the_last_one_scored_on_the_last_known_day():
    last = dt.date(2016, 5, 22)  # d_1941, the last day of the Kaggle evaluation files
    origins = backtest_origins(last)
    assert (len(origins), origins[0], origins[-1]) == (53, dt.date(2015, 4, 27), dt.date(2016, 4, 25))
    assert all(b - a == dt.timedelta(days=7) for a, b in pairwise(origins))
    assert origins[-1] + dt.timedelta(days=HORIZON - 1) == last
    months = by_cutoff(origins)
    assert len(months) == 13 and all(model_cutoff(o) == c <= o for c, os in months.items() for o in os)
    assert months_before(dt.date(2015, 2, 1), 2) == [dt.date(2014, 12, 1), dt.date(2015, 1, 1)]


def _scores() -> pd.DataFrame:
    """Two origins, four methods; issued: 0.7 WRMSSE, bias +10 % then -2 % of 100 and 400 units."""
    rows = []
    for origin, actual, issued_units in ((dt.date(2016, 1, 4), 100.0, 110.0), (dt.date(2016, 1, 11), 400.0, 392.0)):
        for method, wrmsse, rmsse, units in (
            ("issued", 0.70, 0.74, issued_units),
            ("moving_average_28", 0.95, 0.76, actual),
            ("weekday_profile", 0.80, 0.75, actual),
            ("mlforecast", 0.72, 0.80, actual),
        ):
            row = {
                "origin": origin,
                "method": method,
                "wrmsse": wrmsse,
                "mean_rmsse": rmsse,
                "forecast_units": units,
                "actual_units": actual,
                "bias_pct": 100 * (units - actual) / actual,
            }
            if method in ("issued", "moving_average_28"):
                for level in (1, 3, 10, 12):
                    for c in (50, 80, 95):
                        row[f"coverage_{c}_level_{level}"] = c - (4.0 if level == 10 else 0.0)
                        row[f"width_{c}_level_{level}"] = 10.0 if method == "issued" else 12.0
            rows.append(row)
    return pd.DataFrame(rows)


def test_the_report_pools_bias_over_origins_and_judges_every_target():
    scores = _scores()
    table = report.method_table(scores).set_index("method")
    # Pooled: (110 + 392 - 500) / 500, not the mean of +10 % and -2 %.
    assert table.loc["issued", "bias_pct"] == pytest.approx(0.4)
    assert table.loc["issued", "worst_origin_bias_pct"] == pytest.approx(10.0)
    judged = {t.name: t for t in report.targets(scores)}
    assert judged["WRMSSE <= 0.93 x weekday profile's"].met  # 0.70 <= 0.744
    assert judged["WRMSSE <= 0.85 x best other simple baseline's"].met  # 0.70 <= 0.8075
    assert judged["WRMSSE <= mlforecast's"].met
    assert judged["mean RMSSE <= best simple baseline's"].met  # 0.74 <= 0.75
    assert judged["|bias| over all origins <= 3 %"].met
    assert judged["|bias| on every origin <= 10 %"].met  # exactly 10 %: at most
    assert not judged["80 % coverage at level 10 within 3 points"].met  # 76 %
    assert judged["95 % coverage at level 3 within 6 points"].met
    assert judged["80 % width at level 12 <= 28-day mean's"].met
    worse = scores.assign(wrmsse=np.where(scores["method"] == "issued", 0.75, scores["wrmsse"]))
    assert not {t.name: t for t in report.targets(worse)}["WRMSSE <= 0.93 x weekday profile's"].met


def test_the_backtest_job_trains_registers_issues_and_scores_without_touching_the_production_registry(model_data):
    defs = build_definitions(resource(model_data))
    config = {"ops": {tables.BACKTEST_REPORT.name: {"config": {**QUICK, "weeks": 2, "mlforecast_peer": False}}}}
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(BACKTEST_JOB).execute_in_process(instance=instance, run_config=config)
    assert result.success
    scores = reader.read_backtest(model_data / "warehouse")
    last = reader.sales_span(resource(model_data).paths)[1]
    assert sorted(scores["origin"].unique()) == backtest_origins(last, 2)
    methods = set(scores["method"])
    assert {
        "issued",
        "seasonal_naive",
        "moving_average_28",
        "weekday_profile",
        "exponential_smoothing",
        "croston",
        "tsb",
        "adida",
        "ets",
    } <= methods
    assert scores[["wrmsse", "mean_rmsse", "bias_pct"]].notna().all().all()
    issued = scores[scores["method"] == "issued"]
    assert issued["coverage_95_level_12"].between(0, 100).all() and (issued["width_95_level_1"] > 0).all()
    # Every model the dates need and the warm-up models their rules were chosen with, registered
    # under the backtest's own name; no production version.
    client = mlflow.tracking.MlflowClient(registry.tracking_uri(resource(model_data).paths.mlflow))
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    purposes = {str(v.version): client.get_run(v.run_id).data.tags["purpose"] for v in versions}
    assert {v for v, p in purposes.items() if p == "backtest"} == set(issued["model_version"].astype(str))
    assert sum(p == "backtest warm-up" for p in purposes.values()) == WINDOWS
    assert client.search_model_versions(f"name='{registry.MODEL_NAME}'") == []
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == MEETS_TARGETS and check.severity == dg.AssetCheckSeverity.WARN
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    assert metadata["origins"].value == 3 and "| issued" in metadata["methods"].value
