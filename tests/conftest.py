"""Suite-wide settings: hermetic (no hub), and one torch thread count for every test.

float32 results move by ~1e-6 between thread counts (float sums depend on the thread split), so the count
is set here once and nowhere else. One thread: the count the parity tests always ran at in a full run.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
