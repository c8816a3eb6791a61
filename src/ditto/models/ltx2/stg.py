"""STG plumbing of the LTX-2 transformer: which self-attentions a pass skips, per block and per modality, and
the prefix a perturbed pass shares with the conditional pass.

The official guider's perturbed pass (ltx_pipelines 1.0.0 `multi_modal_guider_denoising_func`) skips the
video self-attention at the video guider's STG blocks only when the video STG scale is non-zero, and the
audio self-attention at the audio guider's blocks only when the audio STG scale is non-zero. diffusers'
`spatio_temporal_guidance_blocks` skips both at one list of blocks. The transformer takes either: the
diffusers keyword for both modalities, `video_stg_blocks` / `audio_stg_blocks` for one each.

Prefix reuse: up to the first block it perturbs, a perturbed pass computes exactly what the conditional
pass computes (the same latents, timesteps, prompt and weights). So the conditional pass taps its streams
as they enter that block (`StreamTap`, filled by the block call) and the perturbed pass resumes from them:
its block plan starts there (`BlockPlan.first`), and the blocks before it are never run twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ditto.models.ltx2.attention import PERTURB_ALL, Perturb
from ditto.runtime.contract import BlockCall, Streams

# One block's self-attention perturbations: (video, audio); None leaves that self-attention as it is.
BlockPerturb = tuple[Perturb | None, Perturb | None]
NO_PERTURB: BlockPerturb = (None, None)


@dataclass(frozen=True)
class StgBlocks:
    """The blocks whose video / audio self-attention a perturbed pass skips."""

    video: tuple[int, ...] = ()
    audio: tuple[int, ...] = ()

    def first(self) -> int | None:
        """The first perturbed block: every block before it computes what the unperturbed pass computes."""
        blocks = (*self.video, *self.audio)
        return min(blocks) if blocks else None


@dataclass
class StreamTap:
    """The (video, audio) streams as they enter block `block`: the pass that taps fills `streams` (a copy, so
    nothing the blocks do in place reaches it); a pass that resumes from it starts at that block."""

    block: int
    streams: Streams | None = None


def stg_plan(
    num_blocks: int,
    video_blocks: Sequence[int],
    audio_blocks: Sequence[int],
    mask: torch.Tensor | None = None,
) -> list[BlockPerturb]:
    """Per block: the (video, audio) self-attention perturbation.

    Without a mask every sample is perturbed: the attention is skipped and the values pass through (decided
    here, reading no tensor values). A diffusers `perturbation_mask` (0 = perturb, 1 = keep, per sample)
    blends per sample instead.
    """
    perturb: Perturb = PERTURB_ALL if mask is None else (mask[:, None, None] if mask.ndim == 1 else mask)
    video, audio = set(video_blocks), set(audio_blocks)
    return [
        (perturb if index in video else None, perturb if index in audio else None)
        for index in range(num_blocks)
    ]


def tapped(call: BlockCall, tap: StreamTap) -> BlockCall:
    """`call`, recording a copy of the streams it is given into `tap` before it runs."""

    def run(streams: Streams) -> Streams:
        tap.streams = tuple(stream.clone() for stream in streams)
        return call.run(streams)

    return BlockCall(call.module, run)
