"""Which transformer passes a guided LTX-2 step runs, and how they are laid out; decided once per loop.

The official guider (ltx_pipelines 1.0.0 `multi_modal_guider_denoising_func`) runs up to four passes per
step, each its own call: conditional, unconditional (CFG), perturbed (STG) and isolated-modality. ditto
runs the same passes with two layouts:
* without an STG pass, the CFG pair is one batch (negative, positive), as diffusers batches it;
* with an STG pass whose first perturbed block is k > 0, every pass is its own call (as the official code;
  the perturbed one right after the conditional one, denoise.pass_groups, so a CFG split keeps them
  together where it can) and the perturbed pass shares the conditional pass's first k blocks (prefix
  reuse): the conditional pass taps its streams as they enter block k and the perturbed pass resumes
  from them, so blocks 0..k-1 run once for both. Exact only between passes of the same batch: a row of a
  batched pair rounds differently from the same row alone (matrix products pick other kernels for other
  row counts), which is why the pair is split then. With prefix reuse off (`share_prefix=False`) the passes are the same four calls,
  the perturbed one run whole: the result is bit for bit the same (tests/pipelines/test_ltx2_prefix_reuse.py).

What shares a prefix: only the perturbed pass, with the conditional pass (same latents, timesteps and
prompt up to its first skipped self-attention). The unconditional pass reads another prompt from block 0
on, and the isolated-modality pass drops the audio<->video attention in every block, block 0 included:
they share nothing but the input embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

from ditto.models.ltx2.stg import StgBlocks
from ditto.sampling.guidance import GuiderParams


@dataclass(frozen=True)
class Passes:
    """uncond / perturbed / isolated: which passes besides the conditional one a step needs.
    stg: the self-attentions the perturbed pass skips. split: the perturbed pass shares a prefix with the
    conditional one, so every pass is its own call. branch_at: where the perturbed pass resumes from the
    conditional one (None: it runs whole; the number of blocks: it perturbs nothing and equals it)."""

    uncond: bool
    perturbed: bool
    isolated: bool
    stg: StgBlocks = StgBlocks()
    split: bool = False
    branch_at: int | None = None

    @classmethod
    def of(
        cls,
        video: GuiderParams,
        audio: GuiderParams,
        stg_rule: str = "official",
        num_blocks: int | None = None,
        share_prefix: bool = True,
    ) -> Passes:
        """num_blocks: the transformer's depth (None: a layout decision is not needed, e.g. for encoding);
        share_prefix=False: the same calls, every perturbed pass run whole (for comparisons)."""
        perturbed = video.needs_perturbed or audio.needs_perturbed
        stg = stg_blocks(video, audio, stg_rule) if perturbed else StgBlocks()
        first = stg.first()
        # A perturbation at block 0 shares nothing; none at all shares the whole pass.
        split = perturbed and num_blocks is not None and first != 0
        branch_at = None
        if split and share_prefix:
            branch_at = num_blocks if first is None else first
        return cls(
            uncond=video.needs_uncond or audio.needs_uncond,
            perturbed=perturbed,
            isolated=video.needs_isolated or audio.needs_isolated,
            stg=stg,
            split=split,
            branch_at=branch_at,
        )

    @property
    def perturbs_nothing(self) -> bool:
        """With prefix reuse, an STG pass that perturbs no block is the conditional pass itself: no call."""
        return self.branch_at is not None and self.stg.first() is None

    @property
    def pair(self) -> bool:
        """The CFG pair runs as one batch unless the conditional pass shares a prefix with the perturbed one."""
        return self.uncond and not self.split


def stg_blocks(video: GuiderParams, audio: GuiderParams, rule: str) -> StgBlocks:
    """The official rule: each modality's self-attention is skipped at its guider's blocks when its STG scale
    is non-zero. diffusers': both at their blocks whenever either scale is non-zero."""
    both = rule == "diffusers"
    return StgBlocks(
        video=video.stg_blocks if both or video.needs_perturbed else (),
        audio=audio.stg_blocks if both or audio.needs_perturbed else (),
    )
