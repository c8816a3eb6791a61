"""LTX-2's video decode over the ranks: each rank decodes a band of latent rows, exchanging with its
neighbours exactly the rows each convolution needs.

The LTX-2 video decoder is local: convolutions, per-pixel RMS norms, a per-pixel LayerNorm, depth-to-space
upsampling, and a timestep modulation shared by every pixel. Only the convolutions see their neighbours,
each a row above and below (3x3x3 kernels). So the latent rows are split into contiguous bands, one per
rank, and during the decode every spatial convolution of the decoder is swapped for a `HaloConv3d`: it
fetches the rows next to its band from the neighbouring ranks (an all-gather of every band's edge rows), pads
only the true image edges the way the convolution would (reflect for LTX-2's decoder, zeros, replicate), and
convolves without padding. Every rank computes exactly its rows of the whole-frame decode: the result
equals the single-process decode up to the order of the convolution's float sums (no blending, no seam).

What the seam costs: per convolution, every rank's two edge rows gathered by every rank (about 45
convolutions in the full-size decoder; at the last level a row is 128 channels x frames x 1/4 of the
width), and the bands gathered at the end. No row is decoded twice. A band needs at least two latent
rows (reflect padding reads one row in): fewer latent rows than twice the ranks decode whole on every rank.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ditto.parallel.comm import Group, all_gather, even_sizes, gather_uneven

MIN_BAND_ROWS = 2


def can_split(latent_rows: int, group: Group) -> bool:
    return latent_rows >= MIN_BAND_ROWS * group.size


def decode_in_bands(
    decoder: nn.Module, latents: torch.Tensor, temb: torch.Tensor | None, group: Group
) -> torch.Tensor:
    """`decoder(latents, temb)` ([B, C, F, H, W] latents) with the rows split over `group`; the whole
    decoded video on every rank."""
    rows = even_sizes(latents.shape[3], group.size)
    start = sum(rows[: group.index])
    band = latents.narrow(3, start, rows[group.index])
    with halo_convolutions(decoder, group):
        decoded = decoder(band, temb)
    scale = decoded.shape[3] // band.shape[3]
    return gather_uneven(decoded, [r * scale for r in rows], 3, group)


@contextmanager
def halo_convolutions(decoder: nn.Module, group: Group) -> Iterator[None]:
    """Every 3-D convolution of `decoder` with a spatial kernel swapped for its HaloConv3d while inside (a
    swap, not a hook: the module is guarded by a compiled decoder, a hook would not be)."""
    swapped = []
    for parent in list(decoder.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv3d) and child.kernel_size[1] > 1:
                setattr(parent, name, HaloConv3d(child, group))
                swapped.append((parent, name, child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


class HaloConv3d(nn.Module):
    """`conv` on this rank's band of rows (dim 3), with the neighbours' rows it needs fetched first."""

    def __init__(self, conv: nn.Conv3d, group: Group) -> None:
        super().__init__()
        if conv.stride[1] != 1 or conv.dilation[1] != 1 or conv.padding_mode == "circular":
            raise ValueError(f"a band-split decode needs stride 1, dilation 1, no circular padding: {conv}")
        self.conv, self.group = conv, group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        pad_t, pad_h, pad_w = conv.padding
        if pad_h:
            above, below = self._halos(x, pad_h)
            x = torch.cat([above, x, below], dim=3)
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        if pad_t or pad_w:
            x = F.pad(x, (pad_w, pad_w, 0, 0, pad_t, pad_t), mode=mode)
        return F.conv3d(x, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups)

    def _halos(self, x: torch.Tensor, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `rows` rows above and below this band: the neighbours' own, or the image edge's padding.

        Every rank's edge rows are all-gathered (a functional collective: a compiled decoder traces it into
        its graph, where send/receive pairs would break it at every convolution) and each rank keeps its
        neighbours'."""
        index, last = self.group.index, self.group.size - 1
        edges = all_gather(torch.stack([x[:, :, :, :rows], x[:, :, :, -rows:]]), self.group)
        above = edges[index - 1, 1] if index > 0 else self._edge(x, rows, top=True)
        below = edges[index + 1, 0] if index < last else self._edge(x, rows, top=False)
        return above, below

    def _edge(self, x: torch.Tensor, rows: int, top: bool) -> torch.Tensor:
        """What the convolution's own padding puts beyond the image's top or bottom edge."""
        mode = self.conv.padding_mode
        if mode == "zeros":
            return x.new_zeros(*x.shape[:3], rows, x.shape[4])
        if mode == "reflect":
            picked = x[:, :, :, 1 : rows + 1] if top else x[:, :, :, -rows - 1 : -1]
            return picked.flip(3)
        edge = x[:, :, :, :1] if top else x[:, :, :, -1:]  # replicate
        return edge.expand(*x.shape[:3], rows, x.shape[4])
