"""How a booster's output becomes the units a forecast issues: scaled by a level, blended with it.

The booster is trained with each row's demand level as its starting score (a tweedie offset of
``log(level + 1/28)``), so it learns how a day departs from its series' level rather than the
level itself. Left to learn the level, early stopping on a small, noisy catalogue kept it at one
average for every series, and the forecasts stayed at the training window's mean while demand
moved (26 % low on the genuine series).

The booster's output is a multiplier of the level its row started from in training: the row's
own level feature, the 56 days ending 28 days before the row's day (``row_levels``), so a
forecast issued on D reads nothing dated on or after D. Issuing once multiplied it by the level
at the forecast date instead (``origin_levels``), 1 to 27 days fresher than the level the booster
learned its multipliers on. Where the two differ most, they disagree wildly: just after a genuine
series' 67-day stock-out its row level was 0.036 (the run's zeros) and its origin level 3.9 (sales
back); the booster's x 77 for such rows, right on 0.036, issued 305 units a day for a series that
never sold 21, and real_280's backtest ran 7 to 9 % high at WRMSSE 1.21 against seasonal naive's
0.83 (issue 24). Serving the row's own level scores 0.73 there, 1 % low. Training each row from
its forecast date's level instead (the training days cut into forecasts every 28 days) was
tried too: no blow-ups, but WRMSSE 0.89, and 15 % high on the genuine subset.

The freshest level a forecast issued on D allows, the 56 days just before D (on each series' row
dated D + 27, as its level feature is lagged 28 days), is what the model is blended with.
The issued units are ``w * model + (1 - w) * origin level``, with ``w`` chosen on the validation
window: where the level alone forecasts better than the model, the product issues it. The plain
28-day mean was tried as the baseline instead: on the genuine subset validation chose
0.4 x model + 0.6 x it, mean RMSSE 0.837 but 6.5 % low, since it reads a stock-out's zeros as
demand, which the demand level bridges.

Before the blend, a model trained now is refreshed (``refreshed``): its units are moved from the
level each row started from to the origin's level, by at most x 1.5 either way. Day 1 of a
forecast otherwise scales the booster by a level that ended 28 days earlier, so the model lagged
demand that moved in the last weeks: on real_280's 53 origins the model alone ran 3.9 % low on
busy series while their 28-day mean ran 1.9 % high. Refreshed, the issued forecast scores WRMSSE
0.723 against 0.737, its bias is -2.1 % against -3.5 % and its worst date -12.8 % against -14.4 %
(bounded at 1.25 or 2 instead of 1.5: 0.726 against 0.722; unbounded, the stock-out blow-up
above). Chosen per volume band instead, it scored 0.730: the choice flipped month by month, and
on the 10 genuine series it chose the refreshed model for the slowest band, 6.7 % high.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

import lightgbm as lgb
import numpy as np
import pandas as pd

from m5_assets.features.catalog import FEATURE_NAMES, HORIZON, LEVEL_FEATURE
from m5_assets.grid import as_text, by_text
from m5_assets.intervals import Calibration

LEVEL_INDEX = FEATURE_NAMES.index(LEVEL_FEATURE)
MEAN_FEATURE = "roll_mean_28"  # the 28 days ending the day before the origin, on the row dated origin + 27
LEVEL_SMOOTHING = 1 / HORIZON  # one unit in four weeks: a series with no sales still has a scale
BLEND_WEIGHTS = tuple(round(w, 1) for w in np.linspace(0.0, 1.0, 11))
# How far a refreshed model may move from the level its row started from, either way (``refreshed``).
REFRESH_LIMIT = 1.5
RULE_ARTIFACT = "issue_rule.json"  # stored with each MLflow run; models without one predict units


def offset(level: np.ndarray) -> np.ndarray:
    """The starting raw score of rows with this demand level (a missing level counts as none)."""
    return np.log(np.nan_to_num(np.asarray(level, dtype=np.float64), nan=0.0) + LEVEL_SMOOTHING)


def refreshed(model_units: np.ndarray, start: np.ndarray, origin_level: np.ndarray) -> np.ndarray:
    """The model's units moved from the level each row started from (``start``: its own level, of
    the 56 days ending 28 days before its day) to the series' level at the origin (the 56 days
    just before it), by at most ``REFRESH_LIMIT`` either way.

    The booster's multipliers are learned on levels up to 27 days older than the origin's (day h
    of a forecast: 27 - h days), so demand that rose or fell in those days reaches the model only
    through this. Unbounded, it multiplies a booster's x 77 learned on a stock-out's 0.036 by a
    level of 3.9 (see the module docstring); bounded, a level that moved by half again is followed
    that far and no further.
    A row without either level (a series not released by then, or whose row of the origin was
    left out as a likely stock-out) keeps the model's units as they are.
    """
    shift = np.clip(offset(origin_level) - offset(start), -np.log(REFRESH_LIMIT), np.log(REFRESH_LIMIT))
    known = ~(np.isnan(np.asarray(origin_level, dtype=np.float64)) | np.isnan(np.asarray(start, dtype=np.float64)))
    return np.asarray(model_units, dtype=np.float64) * np.exp(np.where(known, shift, 0.0))


LEVEL_PARTNER, MEAN_PARTNER = "demand_level", "mean_28"
PARTNER_NAMES = {LEVEL_PARTNER: "demand level", MEAN_PARTNER: "28-day mean"}


@dataclass(frozen=True)
class Partners:
    """Per row, what the model may be blended with, as of the forecast's origin: the series'
    demand level (bridging likely stock-outs) and its plain 28-day mean, which also places the
    series in a volume band (``Segment``). NaN where the series has no such history."""

    level: np.ndarray
    mean_28: np.ndarray

    @classmethod
    def at_origin(cls, keys: pd.DataFrame, matrix: np.ndarray, origin: dt.date) -> Partners:
        return cls(
            origin_feature(keys, matrix, origin, LEVEL_FEATURE), origin_feature(keys, matrix, origin, MEAN_FEATURE)
        )

    def of(self, partner: str) -> np.ndarray:
        values = {LEVEL_PARTNER: self.level, MEAN_PARTNER: self.mean_28}[partner]
        return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)

    def scale_base(self, units: np.ndarray) -> np.ndarray:
        """What the issued ``units``' intervals scale with: the larger of them and the demand level."""
        return np.maximum(np.asarray(units, dtype=np.float64), self.of(LEVEL_PARTNER))

    def bands(self, uppers: Sequence[float]) -> np.ndarray:
        """Each row's band: the first of ``uppers`` its 28-day mean is below (no history: band 0)."""
        mean = np.nan_to_num(np.asarray(self.mean_28, dtype=np.float64), nan=0.0)
        return np.minimum(np.searchsorted(np.asarray(uppers, dtype=np.float64), mean, side="right"), len(uppers) - 1)


@dataclass(frozen=True)
class Segment:
    """How the series of one volume band issue: their 28-day mean at the origin is below
    ``upper`` (and at least the previous band's); ``model_weight`` x model + the rest x ``partner``."""

    upper: float
    model_weight: float
    partner: str = LEVEL_PARTNER


@dataclass(frozen=True)
class IssueRule:
    """How a model version's predictions become issued units."""

    blend_weight: float = 1.0  # weight of the model; the rest goes to the level (rules without segments)
    relative: bool = True  # False for models trained before the level offset: they predict units
    chosen_because: str = ""
    segments: tuple[Segment, ...] = ()  # when chosen per volume band: one blend per band, ascending
    # The model's units moved to the origin's level (``refreshed``) before blending; rules stored
    # before refreshing existed read as False and issue as they did.
    refresh: bool = False

    def model_units(
        self, prediction: np.ndarray, start: np.ndarray, origin_level: np.ndarray | None = None
    ) -> np.ndarray:
        """The model's units from the booster's ``prediction`` and ``start``, the level each row
        started from in training: the row's own level feature (``row_levels``); refreshed to
        ``origin_level``, each row's series' level at the origin, if the rule says so."""
        if not self.relative:
            return np.asarray(prediction, dtype=np.float64)
        units = np.asarray(prediction, dtype=np.float64) * np.exp(offset(start))
        if not self.refresh:
            return units
        if origin_level is None:
            raise ValueError(
                "this rule refreshes the model to the origin's level: model_units needs each row's origin level"
            )
        return refreshed(units, start, origin_level)

    def blend(self, model_units: np.ndarray, partners: Partners) -> np.ndarray:
        """Issued units: the model's units (``model_units``) blended with each row's partner."""
        if not self.segments:
            return self.blend_weight * model_units + (1.0 - self.blend_weight) * partners.of(LEVEL_PARTNER)
        band = partners.bands([s.upper for s in self.segments])
        weight = np.array([s.model_weight for s in self.segments])[band]
        partner = np.zeros(len(band))
        for i, segment in enumerate(self.segments):
            partner[band == i] = partners.of(segment.partner)[band == i]
        return weight * model_units + (1.0 - weight) * partner

    def units(self, prediction: np.ndarray, start: np.ndarray, partners: Partners) -> np.ndarray:
        """Issued units from the booster's ``prediction``, the level each row started from in
        training (``row_levels``) and each row's ``partners`` at the origin."""
        return self.blend(self.model_units(prediction, start, partners.level), partners)

    def describe(self) -> str:
        if self.segments:
            lower, parts = 0.0, []
            for k, s in enumerate(self.segments):
                following = self.segments[k + 1] if k + 1 < len(self.segments) else None
                if following and (following.model_weight, following.partner) == (s.model_weight, s.partner):
                    continue  # bands that share a blend read as one
                band = f"28-day mean >= {lower:g}" if not np.isfinite(s.upper) else f"28-day mean {lower:g}-{s.upper:g}"
                parts.append(f"{band}: {_blend_words(s.model_weight, PARTNER_NAMES[s.partner], self._model_words())}")
                lower = s.upper
            return "; ".join(parts)
        return _blend_words(self.blend_weight, PARTNER_NAMES[LEVEL_PARTNER], self._model_words())

    def _model_words(self) -> str:
        return "refreshed model" if self.refresh else "model"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> IssueRule:
        stored = json.loads(text)
        # Rules written while a blend partner was a choice carry a "partner" key; it was always the level.
        kept = {f.name: stored[f.name] for f in fields(cls) if f.name in stored}
        kept["segments"] = tuple(Segment(**s) for s in kept.get("segments", ()))
        return cls(**kept)


def _blend_words(weight: float, partner: str, model: str = "model") -> str:
    if weight == 1.0:
        return model
    if weight == 0.0:
        return partner
    return f"{weight:g} x {model} + {1 - weight:g} x {partner}"


LEGACY = IssueRule(blend_weight=1.0, relative=False, chosen_because="trained before issue rules: predicts units")


def new_model_rule(relative: bool) -> IssueRule:
    """How a model trained now forms its units before any blend: refreshed to the origin's level
    when its booster learned multipliers of a level (``relative``), as is."""
    return IssueRule(relative=relative, refresh=relative)


def window_forecast(
    keys: pd.DataFrame, matrix: np.ndarray, booster_says: np.ndarray, origin: dt.date, relative: bool
) -> pd.DataFrame:
    """``keys`` with what an issue rule is chosen on for a forecast issued on ``origin``:
    prediction (the model's units, formed as a new model's are: ``new_model_rule``), level and
    mean_28 (the series' partners at the origin). ``matrix`` holds the rows' features and
    ``booster_says`` the booster's output on them."""
    partners = Partners.at_origin(keys, matrix, origin)
    units = new_model_rule(relative).model_units(booster_says, row_levels(matrix), partners.level)
    return keys.assign(prediction=units, level=partners.level, mean_28=partners.mean_28)


def row_levels(matrix: np.ndarray) -> np.ndarray:
    """Each row's own demand level: the one its training row started from (lagged 28 days)."""
    return matrix[:, LEVEL_INDEX].astype(np.float64)


def origin_feature(keys: pd.DataFrame, matrix: np.ndarray, origin: dt.date, feature: str) -> np.ndarray:
    """For each row, its series' ``feature`` as of a forecast issued on ``origin``: the value on
    the series' row dated origin + 27, whose windows end the day before ``origin`` (every sales
    feature is lagged 28 days).

    ``keys`` (id, date) and ``matrix`` share rows. A series without that row (not released by
    then) gets NaN.
    """
    dates = pd.to_datetime(keys["date"])
    at = (dates == pd.Timestamp(origin + dt.timedelta(days=HORIZON - 1))).to_numpy()
    column = FEATURE_NAMES.index(feature)
    # Each row's position among the origin's rows (one per series), or -1 for a series without one.
    position = by_text(keys["id"], pd.Index(as_text(keys.loc[at, "id"])).get_indexer)
    # Position -1 takes the NaN appended last.
    return np.append(matrix[at, column].astype(np.float64), np.nan)[position]


def origin_levels(keys: pd.DataFrame, matrix: np.ndarray, origin: dt.date) -> np.ndarray:
    """Each row's series' demand level as of a forecast issued on ``origin``."""
    return origin_feature(keys, matrix, origin, LEVEL_FEATURE)


@dataclass(frozen=True)
class IssuingModel:
    """A registered model version with what forecasting needs from its run."""

    booster: lgb.Booster
    calibration: Calibration
    version: str
    run_id: str
    cutoff: dt.date
    rule: IssueRule = field(default_factory=IssueRule)
    # The feature catalog version its booster learned on (CATALOG_VERSION then); None for a
    # version trained before runs recorded it.
    feature_catalog: int | None = None
