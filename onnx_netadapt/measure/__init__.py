"""Measuring resources on a target: runner protocol, layer signatures, statistics, tables."""
