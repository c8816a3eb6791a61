"""Speed options: regional compile (compile.py) and FP8 block products (fp8.py)."""

QUANTIZATIONS = ("fp8",)  # the values of quantization= / --quantization
# The values of offload= / --offload: host memory, or nothing moved (the budget only checked); "disk" is
# refused with its reason (offload/setup.py).
OFFLOAD_MODES = ("cpu", "disk", "none")
