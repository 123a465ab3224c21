"""Who owns each asset and what it is, as the catalog shows them and filters on: the owner, the
domain, the layer of the pipeline, and whether it holds personal data (none does: M5 is units and
prices by item, store and day, with no customer in it)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

DOMAIN = "demand-forecasting"
# By asset group: every asset of a group sits in the same layer.
LAYERS = {
    "raw": "raw",
    "sales": "staging",
    "features": "feature-store",
    "model": "model",
    "forecasts": "forecast",
    "monitoring": "monitoring",
    "inventory": "planning",
    "backtest": "evaluation",
}


def owned(assets: Sequence[object], owner: str) -> list[dg.AssetsDefinition]:
    """``assets`` with ``owner`` and the domain, layer and pii tags on every asset they hold."""
    defined = [a for a in assets if isinstance(a, dg.AssetsDefinition)]
    if others := [a for a in assets if not isinstance(a, dg.AssetsDefinition)]:
        raise TypeError(f"only asset definitions can carry owners and tags here, not {others}")

    def attributes(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.group_name not in LAYERS:
            raise ValueError(f"asset {spec.key.to_user_string()}: group {spec.group_name!r} has no layer in LAYERS")
        tags = {"domain": DOMAIN, "layer": LAYERS[spec.group_name], "pii": "false"}
        return spec.merge_attributes(owners=[owner], tags=tags)

    return list(dg.map_asset_specs(attributes, defined))
