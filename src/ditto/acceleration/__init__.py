"""Speed options: regional compile (compile.py) and FP8 block products (fp8.py)."""

QUANTIZATIONS = ("fp8",)  # the values of quantization= / --quantization
