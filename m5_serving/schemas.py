"""Request and response models. Requests are strict: unknown fields and wrong types are a 422."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from m5_assets.tables import FORECAST_VALUE_DESCRIPTIONS as VALUES
from m5_assets.tables import SERIES_DESCRIPTIONS as SERIES

# Examples the documentation pages fill in: a real M5 item and store, and a day the newest
# forecast of the Kaggle files (issued 2016-05-23) covers.
EXAMPLE_ITEM, EXAMPLE_STORE, EXAMPLE_DAY = "FOODS_3_090", "CA_1", "2016-05-25"
# Units served are rounded to this many decimals: a forecast is not known to a millionth of a unit.
UNITS_DECIMALS = 3


class Problem(BaseModel):
    """What every refusal answers."""

    detail: str = Field(description="what went wrong and what to do, in words")


# Every answer other than 200 that the API gives, and when.
REFUSALS = {
    401: "no API key, or an unknown one (only when keys are configured); `WWW-Authenticate: Bearer`",
    403: "the key's scope does not allow this operation: the admin operations need an admin key",
    404: "no such series, level, key or day in the forecast served: the detail names it and gives examples",
    413: "the request body is over the limit (`M5_API_MAX_BODY_BYTES`, 1 MiB by default)",
    422: "the request does not match its schema: the detail lists each field's problem",
    429: "the rate limit is reached (per key, or per client address without keys); `Retry-After` says when to retry",
    503: "not ready: nothing published to serve yet, or the online store (Redis) unreachable; `Retry-After` when known",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation that can refuse with ``codes``."""
    return {code: {"description": REFUSALS[code]} | ({} if code == 422 else {"model": Problem}) for code in codes}


# Every keyed operation can be refused for its key, its rate or readiness.
KEYED = (401, 403, 429, 503)


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

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"item_id": EXAMPLE_ITEM, "store_id": EXAMPLE_STORE, "date": EXAMPLE_DAY, "interval": 80}]
        },
    )


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

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"item_id": EXAMPLE_ITEM, "store_id": EXAMPLE_STORE, "date": EXAMPLE_DAY},
                        {"item_id": "HOBBIES_1_001", "store_id": "TX_2", "date": "2016-06-01", "interval": 50},
                    ]
                }
            ]
        },
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
