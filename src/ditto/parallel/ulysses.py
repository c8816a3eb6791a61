"""Ulysses sequence parallelism inside one attention call.

Each rank holds a shard of the tokens of some segments (the layout's `Segment`s: a segment is sharded in
rank order, or whole on every rank). For attention every query needs every key, so the call's queries,
keys and values are exchanged all-to-all from token shards to head shards: each rank then holds the whole
sequence for 1/n of the heads, runs the ordinary attention kernel on it (`local`, layers/attention.py), and
the outputs go back from head shards to token shards.

- Keys and values all whole (a text cross-attention, or LTX-2's audio kept whole): no exchange at all, the
  local queries attend to the whole keys.
- Queries whole but keys sharded (LTX-2's video-to-audio attention with audio kept whole): the queries'
  own heads are taken locally, keys and values are exchanged, and the outputs' heads are gathered.
- Uneven token counts: the all-to-all carries per-rank split sizes, so nothing is padded and no mask is
  added (the gathered sequence is the single-process sequence, in its order: a given mask applies as is).
- Head counts that the group does not divide: zero heads are appended up to the next multiple; their
  outputs (zero queries, keys and values give zero) are dropped. The extra work is the padded fraction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from ditto.parallel.comm import Group, all_gather, all_to_all

Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass(frozen=True)
class Segment:
    """A named run of tokens: `length` in all; `sizes[r]` of them on rank r (None: all of them on every rank)."""

    name: str
    length: int
    sizes: tuple[int, ...] | None = None

    @property
    def sharded(self) -> bool:
        return self.sizes is not None

    def local(self, index: int) -> int:
        return self.length if self.sizes is None else self.sizes[index]

    def offset(self, index: int) -> int:
        return 0 if self.sizes is None else sum(self.sizes[:index])


@dataclass(frozen=True, eq=False)
class AttentionSplit:
    """One attention call's queries (made of segments `q`) and keys/values (`kv`) over `group`."""

    group: Group
    q: tuple[Segment, ...]
    kv: tuple[Segment, ...]

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, local: Attend
    ) -> torch.Tensor:
        """q, k, v: [B, local tokens, heads, head_dim] in the segments' order; mask over the whole sequences
        (as with one process). Returns [B, local query tokens, heads, head_dim]."""
        if not any(segment.sharded for segment in self.kv):
            return local(q, k, v, self._local_query_rows(mask))
        heads = q.shape[2]
        if k.shape[2] != heads:  # grouped-query attention: repeat K/V heads before splitting heads
            k, v = (t.repeat_interleave(heads // k.shape[2], dim=2) for t in (k, v))
        padded = -(-heads // self.group.size) * self.group.size
        q, k, v = (_pad_heads(t, padded) for t in (q, k, v))
        if self.q == self.kv:  # self-attention: one exchange for all three
            q, k, v = self._to_heads(torch.stack([q, k, v]), self.q).unbind(0)
        else:
            q = self._to_heads(q.unsqueeze(0), self.q)[0]
            k, v = self._to_heads(torch.stack([k, v]), self.kv).unbind(0)
        out = local(q, k, v, self._local_heads(mask, padded))
        return self._to_tokens(out, self.q)[:, :, :heads]

    def _to_heads(self, x: torch.Tensor, segments: tuple[Segment, ...]) -> torch.Tensor:
        """[m, B, local tokens, padded heads, D] -> [m, B, all tokens, local heads, D]."""
        index, size = self.group.index, self.group.size
        parts = x.split([segment.local(index) for segment in segments], dim=2)
        out = []
        for segment, part in zip(segments, parts, strict=True):
            if segment.sharded:
                out.append(_tokens_to_heads(part, segment.sizes, self.group))
            else:
                heads = part.shape[3] // size
                out.append(part[:, :, :, index * heads : (index + 1) * heads])
        return out[0] if len(out) == 1 else torch.cat(out, dim=2)

    def _to_tokens(self, out: torch.Tensor, segments: tuple[Segment, ...]) -> torch.Tensor:
        """[B, all tokens, local heads, D] -> [B, local tokens, padded heads, D]."""
        parts = out.split([segment.length for segment in segments], dim=1)
        back = []
        for segment, part in zip(segments, parts, strict=True):
            if segment.sharded:
                back.append(_heads_to_tokens(part, segment.sizes, self.group))
            else:  # whole on every rank: every rank needs every head
                back.append(all_gather(part, self.group).permute(1, 2, 0, 3, 4).flatten(2, 3))
        return back[0] if len(back) == 1 else torch.cat(back, dim=1)

    def _local_heads(self, mask: torch.Tensor | None, padded: int) -> torch.Tensor | None:
        """A per-head mask's heads of this rank (a mask shared by all heads stays as it is)."""
        if mask is None or mask.ndim < 4 or mask.shape[1] == 1:
            return mask
        mask = _pad_heads(mask.transpose(1, 2), padded).transpose(1, 2)
        heads = padded // self.group.size
        return mask[:, self.group.index * heads : (self.group.index + 1) * heads]

    def _local_query_rows(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        """A mask with a query axis, cut to this rank's queries."""
        if mask is None or mask.ndim < 2 or mask.shape[-2] == 1 or not any(s.sharded for s in self.q):
            return mask
        return mask.index_select(-2, self._query_rows.to(mask.device))

    @cached_property
    def _query_rows(self) -> torch.Tensor:
        rows, start = [], 0
        for segment in self.q:
            first = start + segment.offset(self.group.index)
            rows.append(torch.arange(first, first + segment.local(self.group.index)))
            start += segment.length
        return torch.cat(rows)


def _pad_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """x [..., H, D] (heads on dim -2) with zero heads appended up to `heads`."""
    missing = heads - x.shape[-2]
    if missing == 0:
        return x
    return torch.cat([x, x.new_zeros(*x.shape[:-2], missing, x.shape[-1])], dim=-2)


def _tokens_to_heads(x: torch.Tensor, sizes: tuple[int, ...], group: Group) -> torch.Tensor:
    """[m, B, sizes[me], n*h, D] -> [m, B, sum(sizes), h, D]: my tokens of each rank's heads go to that rank."""
    n, (m, batch, mine, heads, dim) = group.size, x.shape
    chunks = x.unflatten(3, (n, heads // n)).permute(3, 2, 0, 1, 4, 5)  # [n, mine, m, B, h, D]
    out = all_to_all(chunks.reshape(n * mine, m, batch, heads // n, dim), [mine] * n, sizes, group)
    return out.permute(1, 2, 0, 3, 4)


def _heads_to_tokens(x: torch.Tensor, sizes: tuple[int, ...], group: Group) -> torch.Tensor:
    """[B, sum(sizes), h, D] -> [B, sizes[me], n*h, D]: each rank's tokens of my heads go back to it."""
    n, mine = group.size, sizes[group.index]
    out = all_to_all(x.transpose(0, 1), sizes, [mine] * n, group)  # [n*mine, B, h, D]
    return out.unflatten(0, (n, mine)).permute(2, 1, 0, 3, 4).flatten(2, 3)
