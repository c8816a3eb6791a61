"""Shared test helpers, importable from every test module as `helpers.*` (pytest's `pythonpath` names
tests/): metrics, parity thresholds, and the tiny checkpoints each family's tests build once per process."""
