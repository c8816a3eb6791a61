"""Tiny random-weight checkpoints, built offline and deterministically, for tests and the demo model."""
