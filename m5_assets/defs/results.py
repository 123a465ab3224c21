"""The annotations that asset, op, schedule and sensor bodies share: what they receive and yield."""

from collections.abc import Iterator

import dagster as dg

# A step's context: an asset's, or an op's inside a graph asset.
StepContext = dg.AssetExecutionContext | dg.OpExecutionContext
# What an asset body yields: its materializations and its checks' results.
AssetEvents = Iterator[dg.MaterializeResult | dg.AssetCheckResult]
# What an op of a graph asset yields: its outputs and its checks' results.
OpEvents = Iterator[dg.Output | dg.AssetCheckResult]
# What a sensor tick returns, and a schedule's.
TickResult = dg.RunRequest | dg.SkipReason | dg.SensorResult
ScheduleTick = dg.RunRequest | dg.SkipReason | list[dg.RunRequest]
