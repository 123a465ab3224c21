"""MLflow tracking and registry: where runs go, and the champion alias of ``m5-demand``."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from m5_assets import library_env
from m5_assets.features.catalog import HORIZON
from m5_assets.intervals import Calibration
from m5_assets.model import tracking
from m5_assets.model.forecaster import LEGACY, RULE_ARTIFACT, IssueRule, IssuingModel
from m5_assets.settings import load_settings

MODEL_NAME = "m5-demand"
EXPERIMENT = "m5-demand"
CHAMPION = "champion"
BOOSTER_MODEL = "booster"  # each run's LightGBM-flavoured model; the registered version is the pyfunc
PYFUNC_MODEL = "model"  # the registered version: the pyfunc bundling booster, issue rule and intervals
IMPORTANCE_ARTIFACT = "feature_importance.csv"  # the run's gain and split importance per feature
INTERVALS_ARTIFACT = "intervals.json"  # the run's interval calibration, read when forecasting
PROMOTION_MARGIN = 0.01  # a challenger must beat the model serving its cutoff by at least 1 %
EXPERIMENT_DESCRIPTION = (
    "Monthly demand models of m5-forecasting: one run per training cutoff (the `demand_model` asset's "
    "partition), LightGBM on the offline feature store, scored against naive baselines on the 28 days "
    "before the cutoff and registered as m5-demand."
)
MODEL_DESCRIPTION = (
    "Daily unit sales of every item and store, 28 days ahead, with 50/80/95 % intervals: a LightGBM "
    "model (tweedie, from each series' demand level) and the blend with the demand level it issues, "
    "packaged as a pyfunc. A version is promoted only if it beats seasonal naive and, by 1 % on the same "
    "window, the version serving its cutoff; the alias 'champion' names the newest promoted version."
)
MODEL_TAGS = {"domain": "demand forecasting", "data": "M5-shaped retail unit sales", "horizon_days": str(HORIZON)}


def tracking_uri(mlflow_dir: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a SQLite store under the data folder."""
    return library_env.mlflow_tracking_uri() or f"sqlite:///{(mlflow_dir / 'mlflow.db').resolve()}"


DEFAULT_UI = "http://127.0.0.1:5000"  # where `make mlflow` serves the UI


def ui_base(uri: str) -> str:
    """Where a person opens the MLflow UI: ``$M5_MLFLOW_UI_URL`` if set; else the tracking
    server itself when tracking goes to one over HTTP; else the address `make mlflow` serves."""
    configured = load_settings().mlflow_ui_url
    if configured:
        return configured.rstrip("/")
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else DEFAULT_UI


def run_url(uri: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_base(uri)}/#/experiments/{experiment_id}/runs/{run_id}"


def record_version(client: MlflowClient, version: str, *, cutoff: dt.date, decision: Decision, issued_as: str) -> None:
    """Every trained version is registered; its tags and description say whether it passed the
    gate, so the registry alone tells which versions may issue forecasts and why."""
    tags = {
        "cutoff": cutoff.isoformat(),
        "promoted": str(decision.promoted),
        "decision": decision.reason,
        "champion_at_training": str(decision.champion),
        "validation_wrmsse": f"{decision.challenger_wrmsse:.4f}",
        "serving_wrmsse_same_window": "" if decision.serving_wrmsse is None else f"{decision.serving_wrmsse:.4f}",
        "issued_as": issued_as,
    }
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    verdict = "promoted: may issue forecasts" if decision.promoted else "not promoted: never issues forecasts"
    client.update_model_version(
        MODEL_NAME,
        version,
        description=f"Cutoff {cutoff}; validation WRMSSE {decision.challenger_wrmsse:.4f}; {verdict} ({decision.reason}); issued as {issued_as}.",
    )


@dataclass(frozen=True)
class PromotedVersion:
    """A registered version: one that passed the promotion gate (the champion is one), or, where
    ``promoted`` is False, one that did not (a challenger, which may only issue in shadow)."""

    version: str
    run_id: str
    cutoff: dt.date
    promoted: bool = True


def current_champion(client: MlflowClient) -> PromotedVersion | None:
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    assert version.run_id is not None  # every version is registered from its training run (TrackedRun.register)
    cutoff = client.get_run(version.run_id).data.tags["cutoff"]
    return PromotedVersion(str(version.version), version.run_id, dt.date.fromisoformat(cutoff))


@dataclass(frozen=True)
class Decision:
    promoted: bool  # may issue forecasts
    reason: str
    challenger_wrmsse: float
    serving_wrmsse: float | None
    champion: bool = False  # takes the champion alias


def gate(
    cutoff: dt.date,
    challenger_wrmsse: float,
    seasonal_naive_wrmsse: float,
    serving_wrmsse: float | None,
    champion_cutoff: dt.date | None,
) -> Decision:
    """The promotion gate, all of it, on the challenger's validation window.

    Promoted only if it beats seasonal naive and then the model that serves its cutoff today (the
    newest promoted one with a cutoff not after it; for a new month, the champion) by at least 1 %,
    or no model serves that cutoff yet. A promoted version takes the champion alias unless the
    champion has a later cutoff: a model trained for an earlier month (a history backfill) serves
    its own months only.
    """
    if not challenger_wrmsse < seasonal_naive_wrmsse:
        return Decision(False, "does not beat seasonal naive", challenger_wrmsse, serving_wrmsse)
    if serving_wrmsse is None:
        promoted, reason = True, "no promoted model serves this cutoff yet"
    elif challenger_wrmsse <= (1 - PROMOTION_MARGIN) * serving_wrmsse:
        promoted, reason = True, "beats the serving model by at least 1 %"
    else:
        promoted, reason = False, "does not beat the serving model by 1 %"
    champion = promoted and (champion_cutoff is None or champion_cutoff <= cutoff)
    return Decision(promoted, reason, challenger_wrmsse, serving_wrmsse, champion)


def registered_versions(client: MlflowClient) -> list[PromotedVersion]:
    """Every registered version with the gate's decision, oldest cutoff first."""
    found = []
    for version in client.search_model_versions(f"name='{MODEL_NAME}'"):
        assert version.run_id is not None  # every version is registered from its training run (TrackedRun.register)
        tags = client.get_run(version.run_id).data.tags
        if tags.get("cutoff"):
            cutoff = dt.date.fromisoformat(tags["cutoff"])
            found.append(PromotedVersion(str(version.version), version.run_id, cutoff, tags.get("promoted") == "True"))
    return sorted(found, key=lambda v: (v.cutoff, int(v.version)))


def promoted_versions(client: MlflowClient) -> list[PromotedVersion]:
    """Every registered version that passed the promotion gate, oldest cutoff first."""
    return [v for v in registered_versions(client) if v.promoted]


def shadow_version(versions: list[PromotedVersion], serving: PromotedVersion, day: dt.date) -> PromotedVersion | None:
    """The challenger that issues beside ``serving`` on ``day``, in shadow: the newest registered
    version that did not pass the gate, was trained for a cutoff not after ``day``, and is newer
    than the serving one. None when there is none."""
    challengers = [v for v in versions if not v.promoted and v.cutoff <= day and int(v.version) > int(serving.version)]
    return max(challengers, key=lambda v: int(v.version), default=None)


def promote_by_hand(client: MlflowClient, version: str, reason: str) -> PromotedVersion:
    """Promote ``version`` and give it the champion alias, whatever the gate said, recording why."""
    if not reason.strip():
        raise ValueError("a promotion by hand needs a reason: it is recorded with the version")
    registered = client.get_model_version(MODEL_NAME, version)
    assert registered.run_id is not None  # every version is registered from its training run (TrackedRun.register)
    decision = f"promoted by hand: {reason.strip()}"
    # The run's tags decide which versions serve (``promoted_versions``); the version's tell a
    # registry reader the same. Which version is champion is the alias alone.
    for key, value in {"promoted": "True", "decision": decision}.items():
        client.set_tag(registered.run_id, key, value)
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
    client.update_model_version(
        MODEL_NAME, version, description=f"{registered.description or ''} Then {decision}.".strip()
    )
    cutoff = dt.date.fromisoformat(client.get_run(registered.run_id).data.tags["cutoff"])
    return PromotedVersion(str(version), registered.run_id, cutoff)


def newest_promoted(versions: list[PromotedVersion], day: dt.date) -> PromotedVersion | None:
    """The model a forecast issued on ``day`` uses: the newest promoted one with cutoff <= day."""
    usable = [v for v in versions if v.cutoff <= day]
    return usable[-1] if usable else None


def serving_versions(versions: list[PromotedVersion], days: list[dt.date]) -> dict[dt.date, PromotedVersion]:
    """The promoted version each forecast date uses; every day must have one."""
    chosen = {day: newest_promoted(versions, day) for day in days}
    missing = [day for day, version in chosen.items() if version is None]
    if missing:
        raise LookupError(
            f"no promoted model has a cutoff on or before {missing[0]}: materialize demand_model for "
            f"{missing[0]:%Y-%m}-01 or an earlier month first (promoted cutoffs: {[str(v.cutoff) for v in versions] or 'none'})"
        )
    # Past the check no version is None: the filter drops nothing, it tells mypy so.
    return {day: version for day, version in chosen.items() if version is not None}


def validation_start(client: MlflowClient, version: PromotedVersion) -> dt.date:
    """The first day of a version's validation window (its last ``HORIZON`` days before the cutoff)."""
    tags = client.get_run(version.run_id).data.tags
    if "validation_start" in tags:
        return dt.date.fromisoformat(tags["validation_start"])
    return version.cutoff - dt.timedelta(days=HORIZON)


def feature_gains(client: MlflowClient, version: PromotedVersion) -> dict[str, float]:
    """Each feature's gain importance in a version's model; empty for a run that logged none."""
    try:
        text = tracking.read_text(client, version.run_id, IMPORTANCE_ARTIFACT)
    except FileNotFoundError:
        return {}
    table = pd.read_csv(io.StringIO(text))
    return dict(zip(table["feature"].astype(str), table["gain"].astype(float), strict=True))


def load_issue_rule(client: MlflowClient, run_id: str) -> IssueRule:
    """How a run's model issues forecasts; models trained before issue rules predict units."""
    try:
        return IssueRule.from_json(tracking.read_text(client, run_id, RULE_ARTIFACT))
    except FileNotFoundError:
        return LEGACY


def load_booster(client: MlflowClient, promoted: PromotedVersion) -> lgb.Booster:
    try:
        return tracking.load_lightgbm(client, promoted.run_id, BOOSTER_MODEL)
    except FileNotFoundError:
        # Versions registered before the pyfunc registered the LightGBM model itself.
        with tempfile.TemporaryDirectory() as folder:
            source = client.get_model_version_download_uri(MODEL_NAME, promoted.version)
            return mlflow.lightgbm.load_model(
                mlflow.artifacts.download_artifacts(source, dst_path=folder, tracking_uri=client.tracking_uri)
            )


def load_issuing_model(client: MlflowClient, promoted: PromotedVersion) -> IssuingModel:
    """The booster, issue rule and interval calibration of a promoted version, ready to forecast:
    read from the registered pyfunc's one bundle (a single download), or, for versions registered
    before it bundled them, from the run's artifacts one at a time."""
    bundle = _pyfunc_bundle(client, promoted.run_id)
    booster, rule, calibration = bundle if bundle is not None else _loose_artifacts(client, promoted)
    catalog = client.get_run(promoted.run_id).data.params.get("feature_catalog_version")
    return IssuingModel(
        booster,
        calibration,
        promoted.version,
        promoted.run_id,
        promoted.cutoff,
        rule,
        int(catalog) if catalog else None,
    )


def _pyfunc_bundle(client: MlflowClient, run_id: str) -> tuple[lgb.Booster, IssueRule, Calibration] | None:
    """What the run's registered pyfunc bundles (see ``forecast.pyfunc``), or None without one."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = Path(client.download_artifacts(run_id, PYFUNC_MODEL, folder))
            parts = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]["artifacts"]
            found = {name: local / parts[name]["path"] for name in ("booster", "issue_rule", "intervals")}
        except (mlflow.exceptions.MlflowException, OSError, KeyError, TypeError):
            return None
        return (
            lgb.Booster(model_file=str(found["booster"])),
            IssueRule.from_json(found["issue_rule"].read_text()),
            Calibration.from_json(found["intervals"].read_text()),
        )


def _loose_artifacts(client: MlflowClient, promoted: PromotedVersion) -> tuple[lgb.Booster, IssueRule, Calibration]:
    try:
        calibration = Calibration.from_json(tracking.read_text(client, promoted.run_id, INTERVALS_ARTIFACT))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"model version {promoted.version} (run {promoted.run_id}) has no {INTERVALS_ARTIFACT}; retrain its cutoff {promoted.cutoff}"
        ) from error
    return load_booster(client, promoted), load_issue_rule(client, promoted.run_id), calibration
