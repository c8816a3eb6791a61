"""The official LTX-2 multimodal guider: CFG, STG, modality isolation and rescale, per modality.

ltx_core/components/guiders.py (MultiModalGuider.calculate), applied to denoised (x0) predictions:
    pred = cond + (cfg - 1)(cond - uncond) + stg (cond - perturbed) + (modality - 1)(cond - isolated)
    pred *= rescale * std(cond) / std(pred) + (1 - rescale)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GuiderParams:
    """One modality's guider (ltx_core MultiModalGuiderParams): its scales, the blocks its STG perturbs (its
    own self-attention there, and only when stg_scale is non-zero) and its skip_step."""

    cfg_scale: float
    stg_scale: float
    modality_scale: float
    rescale: float
    stg_blocks: tuple[int, ...] = ()
    skip_step: int = 0

    @property
    def needs_uncond(self) -> bool:
        return self.cfg_scale != 1.0

    @property
    def needs_perturbed(self) -> bool:
        return self.stg_scale != 0.0

    @property
    def needs_isolated(self) -> bool:
        return self.modality_scale != 1.0

    def skips(self, step: int) -> bool:
        """MultiModalGuider.should_skip_step: only steps with step % (skip_step + 1) == 0 are computed."""
        return self.skip_step != 0 and step % (self.skip_step + 1) != 0


def guide(
    params: GuiderParams,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    perturbed: torch.Tensor | None,
    isolated: torch.Tensor | None,
) -> torch.Tensor:
    """Combine the passes of one modality. Rescale uses each sample's own std (identical to the official
    global std at batch 1; with a batch, a sample's result then does not depend on its batch-mates)."""
    pred = cond
    if uncond is not None:
        pred = pred + (params.cfg_scale - 1) * (cond - uncond)
    if perturbed is not None:
        pred = pred + params.stg_scale * (cond - perturbed)
    if isolated is not None:
        pred = pred + (params.modality_scale - 1) * (cond - isolated)
    if params.rescale > 0:
        dims = list(range(1, cond.ndim))
        ratio = cond.std(dim=dims, keepdim=True) / pred.std(dim=dims, keepdim=True)
        pred = params.rescale * (pred * ratio) + (1 - params.rescale) * pred
    return pred


@dataclass(frozen=True)
class CFGParams:
    """Classifier-free guidance of one conditional and one unconditional velocity (FLUX.2 Klein, Qwen-Image).

    scale: the guidance scale (Klein's `guidance_scale`, Qwen-Image's `true_cfg_scale`).
    norm_rescale: rescale each token's combined vector to the conditional prediction's norm (Qwen-Image's
        true CFG).
    """

    scale: float
    norm_rescale: bool = False


def cfg(params: CFGParams, cond: torch.Tensor, uncond: torch.Tensor) -> torch.Tensor:
    """pred = uncond + scale (cond - uncond); with norm_rescale, pred *= |cond| / |pred| per token.

    The combination is diffusers' Flux2KleinPipeline.__call__ (`neg_noise_pred + guidance_scale *
    (noise_pred - neg_noise_pred)`) and QwenImagePipeline.__call__ (`comb_pred = neg_noise_pred +
    true_cfg_scale * (noise_pred - neg_noise_pred)`, then `comb_pred * (cond_norm / noise_norm)` with both
    norms over the last dimension), operation for operation so the bits match.
    """
    combined = uncond + params.scale * (cond - uncond)
    if not params.norm_rescale:
        return combined
    cond_norm = torch.norm(cond, dim=-1, keepdim=True)
    combined_norm = torch.norm(combined, dim=-1, keepdim=True)
    return combined * (cond_norm / combined_norm)
