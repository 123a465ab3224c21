"""Request and response models. Requests are strict: unknown fields and wrong types are a 422."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from m5_assets.tables import FORECAST_VALUE_DESCRIPTIONS as VALUES
from m5_assets.tables import SERIES_DESCRIPTIONS as SERIES


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(Strict):
    item_id: str = Field(
        min_length=1, max_length=80, description=f"{SERIES['item_id']}; 'FOODS_1_001' or 'FOODS_1_001_CA_1'"
    )
    store_id: str = Field(min_length=1, max_length=40, description=SERIES["store_id"])
    date: dt.date = Field(description="the day to forecast")
    interval: Literal[50, 80, 95] = Field(
        95, description="prediction interval, in % (central, or from 0 for series that often sell nothing)"
    )
    as_of: dt.date | None = Field(None, description="use the newest forecast issued on or before this day (audits)")


class PredictionInterval(BaseModel):
    lower: float
    upper: float
    level: int = Field(description="coverage of the interval, in %")


class Prediction(BaseModel):
    id: str = Field(description=SERIES["id"])
    item_id: str
    store_id: str
    date: dt.date
    predicted_sales: float = Field(description=VALUES["forecast"])
    prediction_interval: PredictionInterval
    model_version: str = Field(description=VALUES["model_version"])
    forecast_date: dt.date = Field(description="the partition used: the day the forecast was issued")
    horizon: int = Field(description=VALUES["horizon"])
    timestamp: dt.datetime = Field(description="when this answer was made (UTC)")


class BatchRequest(Strict):
    items: list[PredictRequest] = Field(
        min_length=1, description="lookups; at most the configured batch limit (1,000 by default)"
    )


class BatchError(BaseModel):
    status: int
    detail: str


class BatchEntry(BaseModel):
    index: int
    prediction: Prediction | None = None
    error: BatchError | None = None


class BatchResponse(BaseModel):
    results: list[BatchEntry]
    succeeded: int
    failed: int


class ForecastDay(BaseModel):
    date: dt.date
    horizon: int = Field(description=VALUES["horizon"])
    forecast: float = Field(description=VALUES["forecast"])
    lo_50: float = Field(description=VALUES["lo_50"])
    hi_50: float = Field(description=VALUES["hi_50"])
    lo_80: float = Field(description=VALUES["lo_80"])
    hi_80: float = Field(description=VALUES["hi_80"])
    lo_95: float = Field(description=VALUES["lo_95"])
    hi_95: float = Field(description=VALUES["hi_95"])


class SeriesForecast(BaseModel):
    id: str
    item_id: str
    store_id: str
    dept_id: str
    cat_id: str
    state_id: str
    forecast_date: dt.date
    model_version: str
    days: list[ForecastDay]


class LevelForecast(BaseModel):
    level: int
    level_name: str
    key: str
    forecast_date: dt.date
    model_version: str
    days: list[ForecastDay]


class LevelKeys(BaseModel):
    level: int
    level_name: str
    forecast_date: dt.date
    keys: list[str] = Field(description="pass one as ?key= to get its 28 days")


class Health(BaseModel):
    live: bool
    ready: bool
    reason: str | None = None
    forecast_date: dt.date | None = None
    model_version: str | None = None
    snapshot_age_seconds: float | None = None


class ReloadResult(BaseModel):
    status: Literal["loaded", "unchanged", "refused", "not_ready"]
    forecast_date: str | None = None
    rows: int | None = None
    seconds: float | None = None
    reason: str | None = None
    serving: str | None = None
