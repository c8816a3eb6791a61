"""Side-by-side transformer benchmarks: ditto's native networks against diffusers' on the same weights."""
