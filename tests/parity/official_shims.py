"""Test-only shims that let the official ltx-core / ltx-pipelines 1.0.0 run here (CPU, transformers v5).

- torchaudio: imported by every ltx_pipelines module, used only for audio input (AudioProcessor): its
  Python code (installed beside the venv, its C++ extension skipped), else a stub module.
- torch.cuda.synchronize: called unconditionally by the official pipelines; a no-op on the CPU.
- Gemma: the official configurators hard-code Gemma-3-12B's config (GEMMA3_CONFIG_FOR_LTX) and load it
  through rope-buffer mutations written for transformers 4.5x; the tests give the official pipeline the
  tiny Gemma (loaded by transformers) wrapped in the official GemmaTextEncoder and tokenizer instead.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

# torchaudio 2.11.1's Python code, installed beside the venv by `make install` (pip --no-deps --target): the
# official AudioProcessor's resample and MelSpectrogram, the reference of ditto's audio input. Its compiled
# extension was built for another torch and is never loaded (none of those functions needs it).
REFERENCE_TORCHAUDIO = Path(sys.prefix) / "ref-torchaudio"


def install() -> None:
    if "torchaudio" not in sys.modules:
        if not _reference_torchaudio():
            stub = types.ModuleType("torchaudio")
            stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
            sys.modules["torchaudio"] = stub
    import torch

    if not torch.cuda.is_available():
        torch.cuda.synchronize = lambda *args, **kwargs: None


def _reference_torchaudio() -> bool:
    """Import the reference torchaudio without its compiled extension; False when it is not installed."""
    if not (REFERENCE_TORCHAUDIO / "torchaudio").is_dir():
        return False
    extension = types.ModuleType("torchaudio._extension")
    extension._IS_TORCHAUDIO_EXT_AVAILABLE = False
    extension._IS_ALIGN_AVAILABLE = False
    extension.fail_if_no_align = lambda function: function
    sys.modules["torchaudio._extension"] = extension
    # Off sys.path again once imported: spawned processes (the parallel tests) inherit sys.path, and there
    # diffusers would import this torchaudio without the stub above and fail on its compiled extension.
    sys.path.append(str(REFERENCE_TORCHAUDIO))
    try:
        import torchaudio  # noqa: F401
    finally:
        sys.path.remove(str(REFERENCE_TORCHAUDIO))
    return True


def require_torchaudio() -> None:
    """The audio-input references need the real resample and mel code."""
    import torchaudio

    assert hasattr(torchaudio, "functional"), (
        f"torchaudio's reference code is missing: pip install --no-deps --target {REFERENCE_TORCHAUDIO} "
        "torchaudio==2.11.1 (make install does)"
    )


def use_tiny_gemma_config(gemma_dir: Path) -> None:
    """Make the official feature extractor size itself from the tiny Gemma instead of Gemma-3-12B."""
    from ltx_core.text_encoders.gemma.encoders import encoder_configurator
    from transformers import Gemma3Config

    encoder_configurator.GEMMA3_CONFIG_FOR_LTX = Gemma3Config.from_pretrained(str(gemma_dir))


def official_ledger(checkpoint: Path, gemma_dir: Path, dtype, device):
    """The official ModelLedger whose text_encoder() is the tiny Gemma in the official wrapper."""
    import torch
    from ltx_core.text_encoders.gemma.encoders.base_encoder import GemmaTextEncoder
    from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer
    from ltx_pipelines.utils.model_ledger import ModelLedger
    from transformers import Gemma3ForConditionalGeneration

    use_tiny_gemma_config(gemma_dir)

    class TinyGemmaLedger(ModelLedger):
        def text_encoder(self):
            model = Gemma3ForConditionalGeneration.from_pretrained(str(gemma_dir), dtype=self.dtype)
            tokenizer = LTXVGemmaTokenizer(str(gemma_dir), 1024)
            return GemmaTextEncoder(model=model.to(self.device).eval(), tokenizer=tokenizer, dtype=self.dtype)

    return TinyGemmaLedger(dtype=dtype, device=torch.device(device), checkpoint_path=str(checkpoint))
