"""Forecast issuance, intervals, hierarchy aggregates and accuracy: pure functions over arrays."""
