"""Price features from a series-by-day matrix of shelf prices (NaN before release).

Prices are planned ahead, so the price of the day itself is known when forecasting it (M5 ships
prices for the forecast weeks); everything else here looks only at earlier days.
"""

from __future__ import annotations

import numpy as np

from m5_assets.features.windows import lag, trailing_nanmax, trailing_nanmeans

# A markdown is measured against the highest price of about a quarter: long enough to span a
# promotion and its return to the regular price, short enough to follow a regular price change.
RECENT_MAX_DAYS = 91


def price_features(price: np.ndarray) -> dict[str, np.ndarray]:
    """Current price, change versus a week earlier, momentum versus 28 days, relative to usual,
    and depth of markdown against the recent highest price."""
    means = trailing_nanmeans(price, [28, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "sell_price": price,
            "price_change_1w": price / lag(price, 7) - 1.0,
            "price_momentum_4w": price / means[28],
            "price_relative_usual": price / means[None],
            "price_vs_recent_max": price / trailing_nanmax(price, RECENT_MAX_DAYS),
        }
