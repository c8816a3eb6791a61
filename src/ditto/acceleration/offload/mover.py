"""Moving host-homed tensors to the device and back (`HostStore` keeps the homes).

A load allocates each tensor's device copy on the compute stream and issues the copies on a side stream that
first waits for the compute stream's work queued so far (the copy may reuse memory that work frees); the
tensor's `.data` points at its copy at once, and the compute stream waits for the copy's event before the
first kernel that reads it (`wait`, or the next `load(..., wait=True)`). An eviction points the tensor back at
its home and drops the copy: the allocator hands that memory out again in compute-stream order, after every
kernel queued so far, so nothing waits on the host. Weights are never copied back: the home is the copy that
counts, and a weight changed in place while on the device (a LoRA fused into it) is written home through
`write_home` by whoever changed it.

On the CPU the "device" copies are fresh host tensors made the same way (there are no streams), so the moves
run, and are tested, on a machine without a GPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ditto.acceleration.offload.host import HostStore


class Mover:
    """Which managed tensors are on the device, and the copies that bring them there."""

    def __init__(self, device: torch.device, store: HostStore) -> None:
        self.device = device
        self.store = store
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.loaded: dict[int, torch.Tensor] = {}  # id -> tensor whose data is a device copy
        self.pending: dict[int, torch.cuda.Event] = {}  # id -> event its copy completes at
        self.moved_bytes = 0  # host -> device, since creation (the benchmark reads it)
        self.bytes = 0  # on the device now
        self.peak = 0  # the most on the device since the residency last reset it

    def is_loaded(self, tensor: torch.Tensor) -> bool:
        return id(tensor) in self.loaded

    def loaded_bytes(self) -> int:
        return self.bytes

    def load(self, tensors: Iterable[torch.Tensor], wait: bool = True) -> None:
        """Bring the tensors to the device (those not there yet); with `wait`, the compute stream waits for them."""
        tensors = list(tensors)
        todo = [t for t in tensors if id(t) not in self.loaded and t in self.store]
        if todo:
            self._copy_in(todo)
        if wait:
            self.wait(tensors)

    def _copy_in(self, tensors: Sequence[torch.Tensor]) -> None:
        homes = [self.store.home(t) for t in tensors]
        with torch.inference_mode(False), torch.no_grad():
            # Normal tensors (not inference ones): a LoRA may be fused into them in place between requests.
            copies = [torch.empty_like(home, device=self.device) for home in homes]
            if self.stream is None:
                for copy, home in zip(copies, homes):
                    copy.copy_(home)
                done = None
            else:
                queued = torch.cuda.current_stream(self.device).record_event()
                with torch.cuda.stream(self.stream):
                    self.stream.wait_event(queued)
                    for copy, home in zip(copies, homes):
                        copy.copy_(home, non_blocking=True)
                    done = self.stream.record_event()
        for tensor, copy in zip(tensors, copies):
            tensor.data = copy
            self.loaded[id(tensor)] = tensor
            if done is not None:
                self.pending[id(tensor)] = done
            self.moved_bytes += _size(copy)
            self.bytes += _size(copy)
        self.peak = max(self.peak, self.bytes)

    def wait(self, tensors: Iterable[torch.Tensor] | None = None) -> None:
        """The compute stream waits for the copies of these tensors (all pending copies when None)."""
        ids = list(self.pending) if tensors is None else [id(t) for t in tensors]
        events = {id(e): e for e in (self.pending.pop(i) for i in ids if i in self.pending)}
        for event in events.values():
            torch.cuda.current_stream(self.device).wait_event(event)

    def evict(self, tensors: Iterable[torch.Tensor]) -> None:
        """Point the tensors back at their homes; their device copies go back to the allocator."""
        tensors = [t for t in tensors if id(t) in self.loaded]
        # A copy still in flight must land before its memory can be handed out again.
        self.wait(tensors)
        for tensor in tensors:
            self.bytes -= _size(tensor)
            tensor.data = self.store.home(tensor)
            del self.loaded[id(tensor)]

    def evict_all_but(self, keep: Iterable[torch.Tensor]) -> None:
        kept = {id(t) for t in keep}
        self.evict([t for i, t in list(self.loaded.items()) if i not in kept])

    def write_home(self, tensors: Iterable[torch.Tensor]) -> None:
        """Copy the device values of loaded tensors to their homes (after an in-place change on the device)."""
        with torch.inference_mode(False), torch.no_grad():
            for tensor in tensors:
                if id(tensor) in self.loaded:
                    self.wait([tensor])
                    self.store.home(tensor).copy_(tensor.data)


def _size(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()
