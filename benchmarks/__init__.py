"""ditto's benchmarks (dev-only, not in the wheel). Run each script as a module from the repository root,
e.g. `PYTHONPATH=src python -m benchmarks.gpu_pipelines --tiny --device cpu --out /tmp/b`, so that
`benchmarks.harness` imports without any path set-up."""
