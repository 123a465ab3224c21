"""The short report ``m5 run`` prints after each run: rows, series, dates, scores and checks."""

from __future__ import annotations

import datetime as dt
import typing

import dagster as dg
import numpy as np
import pandas as pd

if typing.TYPE_CHECKING:
    from dagster._core.execution.execution_result import ExecutionResult
    from dagster._core.execution.plan.objects import StepFailureData

_SHOWN = ("dagster/row_count", "series", "first_date", "last_date", "size_mb")


def print_summary(result: ExecutionResult, seconds: float) -> None:
    status = "succeeded" if result.success else "FAILED"
    print(f"\nrun {result.run_id} {status} in {seconds:.1f}s\n")
    tables: dict[str, list[dict]] = {}
    for event in result.get_asset_materialization_events():
        shown = {k: v.value for k, v in event.materialization.metadata.items() if k in _SHOWN}
        if shown:
            tables.setdefault(_name(event.asset_key), []).append(shown | {"partitioned": event.partition is not None})
    if tables:
        print(
            f"{'asset':20s} {'partitions':>10s} {'rows':>12s} {'series':>8s} {'first day':>11s} {'last day':>11s} {'MiB':>8s}"
        )
    for name, partitions in tables.items():
        # Each partition carries its own figures: a run's table adds them up.
        rows = sum(p.get("dagster/row_count", 0) for p in partitions)
        series = max((p["series"] for p in partitions if "series" in p), default="")
        first = min((p["first_date"] for p in partitions if "first_date" in p), default="")
        last = max((p["last_date"] for p in partitions if "last_date" in p), default="")
        size = round(sum(p.get("size_mb", 0.0) for p in partitions), 2)
        count = len(partitions) if partitions[0]["partitioned"] else ""
        print(f"{name:20s} {count:>10} {rows:>12,} {series:>8} {first:>11} {last:>11} {size:>8}")
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if "validation_scores" in metadata:
            print(
                f"\n{_name(event.asset_key)} (cutoff {metadata['cutoff'].value}), "
                f"validation {metadata['validation_window'].value}:"
            )
            print(metadata["validation_scores"].value)
            print(f"issued as: {metadata['issued_as'].value} ({metadata['issue_rule_chosen_because'].value})")
            print(
                f"{metadata['versus_seasonal_naive'].value}; "
                f"model version {metadata['model_version'].value}, promoted: {metadata['promoted'].value} "
                f"({metadata['promotion_decision'].value}), champion: {metadata['champion'].value}; MLflow run {metadata['mlflow_run_id'].value} (`make mlflow`)"
            )
    evaluations = result.get_asset_check_evaluations()
    if evaluations:
        print(f"\nchecks: {sum(e.passed for e in evaluations)} of {len(evaluations)} passed")
    for e in evaluations:
        if not e.passed:
            print(
                f"  FAILED {e.asset_key.to_user_string()}.{e.check_name}:\n    "
                + (e.description or "").replace("\n", "\n    ")
            )
    said = [e.description for e in evaluations if not e.passed and e.description]
    for event in result.all_events:
        if event.is_step_failure:
            text = _failure_text(event.step_failure_data)
            # A failure that repeats a failed check's description was said just above.
            first = text.splitlines()[0] if any(d in text for d in said) else text[:4000]
            print(f"  step {event.step_key} failed: {first}")


def _name(key: dg.AssetKey | None) -> str:
    return key.to_user_string() if key is not None else "?"


def _failure_text(failure: StepFailureData) -> str:
    """A failure the pipeline raised on purpose (bad data, a missing model) or a failed blocking
    check is the user's to fix: its message says all. Anything else is a bug, and its stack trace
    is shown as well."""
    error = failure.error
    if failure.user_failure_data is not None and failure.user_failure_data.description:
        return failure.user_failure_data.description.strip()
    if error is None:
        return "(no error recorded)"
    if failure.user_failure_data is not None:
        return error.message.strip()
    if error.cls_name == "DagsterAssetCheckFailedError":
        # A blocking check stopped the step: its description is printed above, and the stack is
        # Dagster's own (it stays in the run's view in the UI).
        return error.message.split(": ", 1)[-1].strip().replace("\n", " ")
    return error.to_string().strip()


def print_backtest(scores: pd.DataFrame, days: list[dt.date]) -> None:
    """WRMSSE and mean RMSSE of each backtest partition next to seasonal naive and the 28-day mean
    issued the same day."""
    shown = scores[scores["forecast_date"].isin(days)].sort_values("forecast_date")
    columns = [
        "forecast_date",
        "model_version",
        "wrmsse",
        "seasonal_naive_wrmsse",
        "moving_average_28_wrmsse",
        "mean_rmsse",
        "moving_average_28_mean_rmsse",
        "bias_pct",
        "coverage_80",
        "coverage_95",
    ]
    print(f"\nbacktest, {len(shown)} forecast dates, each scored on its 28 days:")
    print(shown[[c for c in columns if c in shown]].round(4).to_markdown(index=False))
    model, naive = shown["wrmsse"].mean(), shown["seasonal_naive_wrmsse"].mean()
    print(f"mean WRMSSE {model:.4f} vs seasonal naive {naive:.4f} ({compared(model, naive)})")
    if "mean_rmsse" in shown:
        rmsse, mean28 = shown["mean_rmsse"].mean(), shown["moving_average_28_mean_rmsse"].mean()
        print(f"mean RMSSE {rmsse:.4f} vs the 28-day mean's {mean28:.4f} ({compared(rmsse, mean28)})")


def compared(error: float, reference: float, than: str = "") -> str:
    """How an error compares with a reference's, lower being better: "12.3 % better" or
    "4.5 % worse" (a loss once printed as "-30.8 % better"), followed by ``than`` if given."""
    if not (np.isfinite(error) and np.isfinite(reference) and reference > 0):
        return f"no ratio: {error:.4f} against {reference:.4f}" + (f" for {than}" if than else "")
    change = 100 * (1 - error / reference)
    if round(change, 1) == 0:
        return "equal" + (f" to {than}" if than else "")
    return f"{abs(change):.1f} % {'better' if change > 0 else 'worse'}" + (f" than {than}" if than else "")


def print_backtest_report(scores: pd.DataFrame, design_before: dt.date) -> None:
    """The backtest's table of methods (all origins, then the later ones alone), its intervals and
    its targets, met or missed."""
    from m5_assets.backtest import report

    origins = sorted(scores["origin"].unique())
    print(
        f"\nbacktest: {len(origins)} forecast dates, {origins[0]} .. {origins[-1]}, each scored on its 28 days; means over them"
    )
    print(report.method_table(scores).round(4).to_markdown(index=False))
    recent = report.later(scores, design_before)
    print(
        f"\nthe {recent['origin'].nunique()} forecast dates from {design_before} (no design choice was made on them):"
    )
    print(report.method_table(recent).round(4).to_markdown(index=False))
    print("\nintervals: coverage (%) and mean width (units) per level")
    print(report.interval_table(scores).round(2).to_markdown(index=False))
    for title, frame in (("all forecast dates", scores), (f"from {design_before}", recent)):
        print(f"\ntargets, {title}:")
        print(report.target_table(frame).round(4).to_markdown(index=False))
