"""Several processes, one per GPU, on torch.distributed (NCCL on GPUs, gloo on CPUs).

- `config`: ParallelConfig (`Engine.from_pretrained(..., parallel=...)`, `--gpus N`).
- `launch`, `session`: starting the ranks (spawned, torchrun, or attached) and rank 0 leading the others'
  calls; failures named, never a hang.
- `mesh`: the process groups (CFG groups and sequence groups for each split a loop may use).
- `loop`: the loop feature: CFG-parallel passes (`cfg`), Ulysses sequence parallelism over the blocks
  (`plan`: what models declare; `sequence`: the layout; `ulysses`: the attention exchange; `comm`).
- `vae`: LTX-2's video decode over the ranks; `text`: prompt sets over the ranks.
docs/architecture.md ("Parallelism") says where each piece plugs in.
"""

from ditto.parallel.config import ParallelConfig

__all__ = ["ParallelConfig"]
