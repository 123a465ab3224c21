"""The registered model as MLflow serves it: feature rows in, forecasts with intervals out.

Each version of ``m5-demand`` is this pyfunc. It packs the booster, the issue rule (how the
booster's output becomes units, see ``model.forecaster``) and the interval calibration, so a user
who loads ``models:/m5-demand@champion`` gets what a forecast partition holds: the point forecast
and the 50/80/95 % bounds per series and day. It forecasts through ``forecast.issue``'s own
``bottom_forecast``, so it issues exactly what the pipeline stores.

Its input is the feature store's rows of the days forecast, D .. D+27 (``forecaster_input``
reads them), for any set of series; the forecast is issued as of the first date, D.
"""

from __future__ import annotations

import datetime as dt
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel, PythonModelContext

from m5_assets.features.catalog import FEATURE_NAMES, HORIZON
from m5_assets.forecast.issue import bottom_forecast
from m5_assets.grid import SERIES_COLUMNS
from m5_assets.intervals import Calibration
from m5_assets.model.forecaster import IssueRule
from m5_assets.model.matrix import fill_matrix
from m5_assets.table_files import TableFiles, TableSource

BOOSTER, RULE, INTERVALS = "booster.txt", "issue_rule.json", "intervals.json"
INPUT_COLUMNS = tuple(dict.fromkeys((*SERIES_COLUMNS, "date", "sell_price", *FEATURE_NAMES)))


def forecaster_input(features: TableSource, day: dt.date, series: list[str] | None = None) -> pd.DataFrame:
    """The pyfunc's input for the forecast issued on ``day``: every released row of ``day`` ..
    ``day + 27`` in the feature store (of ``series`` only, if given), with plain string ids."""
    wanted = (pc.field("date") >= day) & (pc.field("date") < day + dt.timedelta(days=HORIZON))
    if series is not None:
        wanted &= pc.field("id").isin(series)
    frame = TableFiles.of(features).read(columns=list(INPUT_COLUMNS), filters=wanted).to_pandas()
    frame = frame[frame["sell_price"].notna()]
    categorical = [c for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    frame[categorical] = frame[categorical].astype(str)
    # Integers as floats: a signature's integer column refuses the missing values a float takes.
    integer = [c for c in frame if pd.api.types.is_integer_dtype(frame[c])]
    frame[integer] = frame[integer].astype("float64")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.reset_index(drop=True)


def forecast(rows: pd.DataFrame, booster: lgb.Booster, rule: IssueRule, calibration: Calibration) -> pd.DataFrame:
    """The forecast issued on the first date of ``rows`` (``forecaster_input``'s columns)."""
    rows = rows[rows["sell_price"].notna()].reset_index(drop=True)
    rows = rows.assign(date=pd.to_datetime(rows["date"]))
    # The project's boosters carry their vocabulary (``model.training``), in the model file too.
    assert booster.pandas_categorical is not None
    matrix = fill_matrix(
        pa.Table.from_pandas(rows[list(FEATURE_NAMES)], preserve_index=False), booster.pandas_categorical
    )
    predicted = booster.predict(matrix)
    assert isinstance(predicted, np.ndarray)  # sparse only for feature contributions
    return bottom_forecast(rows, matrix, predicted, rows["date"].min().date(), rule, calibration)


class DemandForecaster(PythonModel):
    """Feature rows of one forecast (D .. D+27) -> id, hierarchy, date, horizon, forecast, bounds."""

    def load_context(self, context: PythonModelContext) -> None:
        self.booster = lgb.Booster(model_file=context.artifacts["booster"])
        self.rule = IssueRule.from_json(Path(context.artifacts["issue_rule"]).read_text())
        self.calibration = Calibration.from_json(Path(context.artifacts["intervals"]).read_text())

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return forecast(model_input, self.booster, self.rule, self.calibration)


def save_forecaster(
    path: Path, booster: lgb.Booster, rule: IssueRule, calibration: Calibration, example: pd.DataFrame
) -> None:
    """Save the pyfunc to the new folder ``path``, with a signature and ``example`` (input rows of
    one forecast) as its input example.

    The model's code is this package, imported by name when the model loads: install the project
    (``pip install -e .``) wherever the model is loaded.
    """
    parts = path.parent / f"{path.name}-artifacts"
    parts.mkdir(parents=True)
    booster.save_model(parts / BOOSTER)
    (parts / RULE).write_text(rule.to_json())
    (parts / INTERVALS).write_text(calibration.to_json())
    artifacts = {"booster": str(parts / BOOSTER), "issue_rule": str(parts / RULE), "intervals": str(parts / INTERVALS)}
    with warnings.catch_warnings():
        # The output's horizon is an integer column by design: it is never missing.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        signature = infer_signature(example, forecast(example, booster, rule, calibration))
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),
        artifacts=artifacts,
        signature=signature,
        input_example=example,
        pip_requirements=[f"{n}=={version(n)}" for n in ("lightgbm", "pandas", "pyarrow", "mlflow")],
    )


class ForecasterPackaging:
    """The registered model's packaging for ``model.pipeline``: this module's pyfunc."""

    def example(self, features: TableSource, day: dt.date, series: list[str]) -> pd.DataFrame:
        return forecaster_input(features, day, series=series)

    def save(
        self, path: Path, booster: lgb.Booster, rule: IssueRule, calibration: Calibration, example: pd.DataFrame
    ) -> None:
        save_forecaster(path, booster, rule, calibration, example)
