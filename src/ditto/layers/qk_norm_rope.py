"""Query/key RMS norm and RoPE in one Triton kernel (issue 24: fewer elementwise passes), opt-in.

Why: LTX-2 norms q and k across all heads (`nn.RMSNorm(heads * head_dim)`) and then rotates them. Compiled,
inductor leaves that as two kernels per attention (the norm's statistics, then apply + rotate) that read q
and k twice and the float32 cos/sin tables once per tensor. The kernel here (`qk_norm_rope_kernel.py`) reads
each of q, k and the tables once and writes q and k once. It cannot merge into the attention kernel: the
norm spans all heads, and attention kernels tile by head.

Numbers: the eager operations in their order (float32 statistics, weight, rounding to the element type,
float32 rotation, rounding): float32 outputs equal eager to ~1e-7 relative; bf16 ones differ only where the
sum of squares' order flips a rounding (tests/layers/test_qk_norm_rope.py states the bounds).

What it takes (`norm_rope_accepts`; anything else runs the plain ops): [B, S, H*D] inputs with unit channel
stride in bf16/fp16/fp32, an `nn.RMSNorm` with a weight over all H*D channels, float32 tables of the layouts
`layers/rope.py` builds for LTX-2 (interleaved half-width [B or 1, S, H*D/2], or split [B or 1, S, H, D/2]
with one rope head per attention head), on the kernel's device. Inference only (no backward).

The kernel wraps as torch custom ops, so a regionally compiled block stays one graph (fullgraph=True).
On CUDA it needs Ampere or newer; on the CPU it runs only under Triton's interpreter (TRITON_INTERPRET=1,
the tests), so CPU runs keep the plain path.
"""

from __future__ import annotations

import functools
import os

import torch
from torch import nn

Rope = tuple[torch.Tensor, torch.Tensor]
# Output layouts: "bshd" = the projections' [B, S, H*D] (attention sees strided [B, S, H, D] views, as on the
# plain path); "bhsd" = dense [B, H, S, D] (what cuDNN attention may prefer; measured in gpu_speed).
LAYOUTS = ("bshd", "bhsd")
# Read once at import: dynamo treats it as a constant, so the device check below costs a compiled graph nothing.
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
KERNEL_DEVICE = "cpu" if INTERPRET else "cuda"
HALF_TYPES = (torch.bfloat16, torch.float16, torch.float32)


@functools.cache
def fused_norm_rope_available() -> bool:
    """True when the kernel can run here: an Ampere-or-newer GPU (or Triton's interpreter) and Triton imports."""
    if not INTERPRET and (not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8):
        return False
    try:
        import ditto.layers.qk_norm_rope_kernel  # noqa: F401
    except Exception:  # noqa: BLE001 (any import failure means: not usable here)
        return False
    return True


def norm_rope_accepts(x: torch.Tensor, norm: nn.Module, rope: Rope, rope_type: str, heads: int) -> bool:
    """Whether the kernel takes x [B, S, H*D] with this norm and these tables (see the module docstring)."""
    cos, sin = rope
    if x.ndim != 3 or x.device.type != KERNEL_DEVICE or x.dtype not in HALF_TYPES or x.stride(-1) != 1:
        return False
    if x.requires_grad and torch.is_grad_enabled():  # the custom op has no backward
        return False
    batch, seq, inner = x.shape
    if heads <= 0 or inner % (2 * heads) != 0:
        return False
    half = inner // heads // 2
    weight = getattr(norm, "weight", None)
    if type(norm) is not nn.RMSNorm or weight is None or tuple(norm.normalized_shape) != (inner,):
        return False  # (a subclass or replacement keeps its own forward)
    if weight.dtype not in (x.dtype, torch.float32) or weight.stride(-1) != 1 or weight.device != x.device:
        return False
    per_token = (
        (inner // 2,) if rope_type == "interleaved" else (heads, half) if rope_type == "split" else None
    )
    return (
        per_token is not None
        and cos.shape == sin.shape
        and tuple(cos.shape[1:]) == (seq, *per_token)
        and cos.shape[0] in (1, batch)
        and cos.dtype == sin.dtype == torch.float32
        and cos.device == x.device
        and sin.device == x.device
        and _rows_flat(cos)
        and _rows_flat(sin)
    )


def _rows_flat(table: torch.Tensor) -> bool:
    """A token's table entries are one contiguous run (so [.., H, D/2] flattens to [.., H*D/2] as a view)."""
    expected = 1
    for size, stride in zip(reversed(table.shape[2:]), reversed(table.stride()[2:])):
        if size > 1 and stride != expected:
            return False
        expected *= size
    return True


def _eps(norm: nn.Module) -> float:
    # nn.RMSNorm's eps=None means the computation type's epsilon (float32 for every type taken here).
    return norm.eps if norm.eps is not None else torch.finfo(torch.float32).eps


def fused_qk_norm_rope(
    q: torch.Tensor,
    k: torch.Tensor,
    norm_q: nn.Module,
    norm_k: nn.Module,
    q_rope: Rope,
    k_rope: Rope | None,
    rope_type: str,
    heads: int,
    layout: str = "bshd",
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """norm_q(q), norm_k(k) rotated by q_rope and k_rope (None: k shares q's tables, one kernel for both),
    as [B, S, H, D] (views of dense [B, H, S, D] memory for layout "bhsd"); None where the kernel does not
    take the inputs: the caller runs the plain ops."""
    k_table = q_rope if k_rope is None else k_rope
    if not (
        norm_rope_accepts(q, norm_q, q_rope, rope_type, heads)
        and norm_rope_accepts(k, norm_k, k_table, rope_type, heads)
    ):
        return None
    heads_first = layout == "bhsd"
    eps, flags = (_eps(norm_q), _eps(norm_k)), (heads, rope_type == "split", heads_first)
    if k_rope is None and q.shape[:2] == k.shape[:2]:
        cos, sin = (t.flatten(2) for t in q_rope)
        q_out, k_out = qk_norm_rope(q, k, norm_q.weight, norm_k.weight, cos, sin, *eps, *flags)
    else:  # separate tables (audio<->video cross-attention): one launch each, still one pass per tensor
        q_out = norm_rope(q, norm_q.weight, *(t.flatten(2) for t in q_rope), eps[0], *flags)
        k_out = norm_rope(k, norm_k.weight, *(t.flatten(2) for t in k_table), eps[1], *flags)
    return _as_bshd(q_out, heads, heads_first), _as_bshd(k_out, heads, heads_first)


def _as_bshd(out: torch.Tensor, heads: int, heads_first: bool) -> torch.Tensor:
    return out.transpose(1, 2) if heads_first else out.unflatten(-1, (heads, -1))


def _output(x: torch.Tensor, heads: int, heads_first: bool) -> torch.Tensor:
    batch, seq, inner = x.shape
    if heads_first:
        return x.new_empty(batch, heads, seq, inner // heads)
    return x.new_empty(batch, seq, inner)


def _out_strides(out: torch.Tensor, heads: int, heads_first: bool) -> tuple[int, int, int]:
    """(batch, token, head) strides of the kernel's output, in either layout."""
    if heads_first:
        return out.stride(0), out.stride(2), out.stride(1)
    return out.stride(0), out.stride(1), out.shape[-1] // heads


def launch(
    x: torch.Tensor,
    weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    eps: float,
    heads: int,
    split: bool,
    heads_first: bool,
    k: tuple[torch.Tensor, torch.Tensor, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the kernel on x (and k = (tensor, norm weight, eps), sharing the tables). cos/sin: [B or 1, S,
    H*D/2]. Returns the outputs, [B, S, H*D] or, heads_first, [B, H, S, D] (None for an absent k)."""
    from triton import next_power_of_2

    from ditto.layers.qk_norm_rope_kernel import qk_norm_rope as kernel

    batch, seq, inner = x.shape
    half = inner // heads // 2
    out = _output(x, heads, heads_first)
    k_in, k_weight, k_eps = k if k is not None else (x, weight, eps)  # (unread when absent)
    k_out = _output(k_in, heads, heads_first) if k is not None else out

    def batch_stride(table: torch.Tensor) -> int:
        return table.stride(0) if table.shape[0] > 1 else 0  # one table row shared by every sample

    block_g, block_p = next_power_of_2(heads), next_power_of_2(half)
    grid = (seq, batch)
    kernel[grid](
        x, k_in, weight, k_weight, cos, sin, out, k_out, eps, k_eps,
        x.stride(0), x.stride(1), k_in.stride(0), k_in.stride(1),
        batch_stride(cos), cos.stride(1), batch_stride(sin), sin.stride(1),
        *_out_strides(out, heads, heads_first), *_out_strides(k_out, heads, heads_first),
        G=heads, HALF=half, BLOCK_G=block_g, BLOCK_P=block_p, SPLIT=split, HAS_K=k is not None,
        num_warps=max(1, min(8, inner // 256)),
    )  # fmt: skip
    return out, (k_out if k is not None else None)


@torch.library.custom_op("ditto::qk_norm_rope", mutates_args=())
def qk_norm_rope(
    q: torch.Tensor,
    k: torch.Tensor,
    q_weight: torch.Tensor,
    k_weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    q_eps: float,
    k_eps: float,
    heads: int,
    split: bool,
    heads_first: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS norm and rotation of q and k [B, S, H*D] with one table pair [B or 1, S, H*D/2], in one kernel."""
    q_out, k_out = launch(q, q_weight, cos, sin, q_eps, heads, split, heads_first, (k, k_weight, k_eps))
    return q_out, k_out


@qk_norm_rope.register_fake
def _(q, k, q_weight, k_weight, cos, sin, q_eps, k_eps, heads, split, heads_first):  # noqa: ANN001, ANN202 (the op's own schema)
    return _output(q, heads, heads_first), _output(k, heads, heads_first)


@torch.library.custom_op("ditto::norm_rope", mutates_args=())
def norm_rope(
    x: torch.Tensor,
    weight: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    eps: float,
    heads: int,
    split: bool,
    heads_first: bool,
) -> torch.Tensor:
    """RMS norm and rotation of one tensor [B, S, H*D] with its own tables [B or 1, S, H*D/2]."""
    return launch(x, weight, cos, sin, eps, heads, split, heads_first)[0]


@norm_rope.register_fake
def _(x, weight, cos, sin, eps, heads, split, heads_first):  # noqa: ANN001, ANN202 (the op's own schema)
    return _output(x, heads, heads_first)
