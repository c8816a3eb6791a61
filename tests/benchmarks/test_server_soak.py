"""The soak benchmark runs end to end (a few requests here; benchmarks/RESULTS.md has the 1,000-request run)."""

from __future__ import annotations

from benchmarks import server_soak


def test_soak_runs_and_reports(tmp_path):
    report = server_soak.main(["--requests", "12", "--warmup", "2", "--samples", "3", "--bad-every", "4",
                               "--out", str(tmp_path / "soak.json")])  # fmt: skip
    assert report["outcomes"] == {"ok": 9, "refused": 3}
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0
    assert report["stored_bytes"] <= report["store_bound_bytes"]
    assert (tmp_path / "soak.json").exists()
