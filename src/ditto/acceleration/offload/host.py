"""Host homes of offloaded weights: every adopted tensor's data lives in one flat buffer per group, page-locked
where the device is a GPU, and the tensor's `.data` points at its home whenever it is not on the device.

Why one flat buffer: the page-locked copies run at 55 GB/s host->device on an H200 against 19 GB/s from
pageable memory (shared/notes/gpu-anchors.md), and torch's page-locked allocator rounds each allocation up to
a power of two (Qwen-Image's 72 MiB matrices would take 128 MiB each). So ditto allocates one plain buffer per
group, fills it, and page-locks it in place with cudaHostRegister: no rounding, no second copy. The weights
are copied into their homes once, at adoption; nothing copies them on the host again.

A home is the tensor's only copy off the device: code that reads or writes a weight between stages (a LoRA
fused after loading) sees the home, as it would see a model kept on the CPU.
"""

from __future__ import annotations

import resource
import warnings
import weakref
from collections.abc import Iterable, Iterator

import torch

ALIGN = 256  # bytes: every home starts on a 256-byte boundary (vectorised copies, any dtype's view)
PAGE = resource.getpagesize()


class HostStore:
    """The homes of the tensors it adopted (by tensor identity), in flat host buffers."""

    def __init__(self, pin: bool) -> None:
        self.pin = pin
        self.homes: dict[int, torch.Tensor] = {}
        self.tensors: dict[int, torch.Tensor] = {}  # the adopted tensors themselves, by identity
        self.buffers: list[torch.Tensor] = []
        self.pinned = True  # False once registering failed (copies then run from pageable memory)

    def __contains__(self, tensor: torch.Tensor) -> bool:
        return id(tensor) in self.homes

    def home(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.homes[id(tensor)]

    def at_home(self, tensor: torch.Tensor) -> bool:
        """Whether the tensor's data is its home right now (not a device copy)."""
        home = self.homes.get(id(tensor))
        return home is not None and tensor.data_ptr() == home.data_ptr()

    @property
    def nbytes(self) -> int:
        return sum(buffer.numel() for buffer in self.buffers)

    def adopt(self, tensors: Iterable[torch.Tensor]) -> int:
        """Move each new tensor's data into one new flat host buffer and point the tensor at it; returns the
        bytes adopted. Tensors adopted before are left as they are."""
        new, seen = [], set()
        for tensor in tensors:
            if id(tensor) not in self.homes and id(tensor) not in seen:
                if tensor.is_inference():
                    raise ValueError("an inference tensor cannot change places; adopt a copy (adopt_copies)")
                seen.add(id(tensor))
                new.append(tensor)
        adopted = 0
        for tensor, home in self._fill(new):
            tensor.data = home  # the original's memory goes now, before the next tensor is copied
            self.homes[id(tensor)] = home
            self.tensors[id(tensor)] = tensor
            adopted += home.numel() * home.element_size()
        return adopted

    def adopt_copies(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """New managed tensors holding these tensors' values in homes (for tensors made under inference mode,
        whose data cannot be swapped); the originals are left to their owner to drop."""
        managed = []
        for _, home in self._fill(tensors):
            with torch.inference_mode(False):
                tensor = home.detach()
            self.homes[id(tensor)] = home
            self.tensors[id(tensor)] = tensor
            managed.append(tensor)
        return managed

    def _fill(self, tensors: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(tensor, its home) for each tensor, the homes in one new flat buffer filled one tensor at a time."""
        if not tensors:
            return
        offsets, total = _layout(tensors)
        flat = _page_aligned(total)
        self.buffers.append(flat)
        # From the device, lock the pages first (fast copies into them); from the host, fill first: the
        # originals are freed one by one as their homes fill, and locking commits every page at once.
        from_device = any(t.device.type != "cpu" for t in tensors)
        if from_device:
            self._register(flat)
        for tensor, offset in zip(tensors, offsets):
            with torch.inference_mode(False), torch.no_grad():
                home = _view(flat, offset, tensor)
                home.copy_(tensor.data)
            yield tensor, home
        if not from_device:
            self._register(flat)

    def _register(self, flat: torch.Tensor) -> None:
        if not self.pin or flat.numel() == 0 or not self.pinned:
            return
        cudart = torch.cuda.cudart()
        error = int(cudart.cudaHostRegister(flat.data_ptr(), flat.numel(), 0))
        if error != 0:
            self.pinned = False
            warnings.warn(
                f"cannot page-lock {flat.numel() / 2**30:.1f} GiB of host memory (cudaHostRegister error "
                f"{error}): offloaded weights will move at pageable-memory speed",
                stacklevel=3,
            )
            return
        # Unlocked when the buffer goes (the finalizer holds the pointer, not the buffer).
        weakref.finalize(flat, _unregister, flat.data_ptr())


def _unregister(pointer: int) -> None:
    try:
        torch.cuda.cudart().cudaHostUnregister(pointer)
    except Exception:  # noqa: BLE001 (interpreter shutdown: the driver may be gone already)
        pass


def _page_aligned(size: int) -> torch.Tensor:
    """A host buffer of at least `size` bytes starting and ending on page boundaries (what cudaHostRegister
    locks: whole pages)."""
    pages = -(-size // PAGE) * PAGE
    raw = torch.empty(pages + PAGE, dtype=torch.uint8)
    start = -raw.data_ptr() % PAGE
    return raw[start : start + pages]


def _layout(tensors: list[torch.Tensor]) -> tuple[list[int], int]:
    offsets, total = [], 0
    for tensor in tensors:
        offsets.append(total)
        total += -(-tensor.numel() * tensor.element_size() // ALIGN) * ALIGN
    return offsets, total


def _view(flat: torch.Tensor, offset: int, like: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor shaped and typed like `like`, over `flat`'s bytes from `offset`."""
    size = like.numel() * like.element_size()
    return flat[offset : offset + size].view(like.dtype).view(like.shape)
