"""ParallelConfig: how many processes (one per GPU) an Engine runs on and how it shares the work out."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ditto.errors import InvalidParameter

AUDIO_CHOICES = ("replicate", "shard")
TEXT_CHOICES = ("replicate", "split")
SPEC_HELP = (
    "processes, one per GPU (--device cpu: gloo processes): the guidance passes of each step are split over "
    "them as far as they go, the rest sequence parallel (default 1; torchrun: its WORLD_SIZE). After a colon, "
    "comma-separated: ulysses=U (sequence-parallel processes within each pass), audio=shard|replicate "
    "(LTX-2), text=split|replicate, vae=on|off (LTX-2's decode over the processes)"
)
SWITCHES = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False}


@dataclass(frozen=True)
class ParallelConfig:
    """`Engine.from_pretrained(..., parallel=ParallelConfig(cfg=2, ulysses=2))`: 4 processes.

    cfg: the most processes a step's guidance passes are split over (LTX-2's cond, uncond, perturbed and
        isolated passes; the CFG pair of Qwen-Image and FLUX.2). A loop with fewer passes (a guidance-free
        stage) splits them over the largest divisor of `cfg` that it has passes for, and the processes
        left over join its sequence-parallel group.
    ulysses: the sequence-parallel (Ulysses) degree within a pass, at least.
    audio: LTX-2's audio tokens in sequence parallelism: "replicate" (whole on every rank; the default, as
        the official code: fewer exchanges, ~126 tokens of duplicated work) or "shard" (split like video).
    vae: decode LTX-2's video over all processes (bands of rows, exchanging the rows each convolution needs).
    text: "replicate" (every process encodes every prompt) or "split" (the positive and negative prompts
        over the processes, each set encoded once and sent to the others).
    timeout_s: how long a collective waits for a silent process before failing (a dead rank then stops the
        others with an error instead of a hang). Long enough for the first compile of a pass.
    """

    cfg: int = 1
    ulysses: int = 1
    audio: str = "replicate"
    vae: bool = True
    text: str = "replicate"
    timeout_s: float = 600.0

    @classmethod
    def for_gpus(cls, gpus: int, ulysses: int | None = None, **options: Any) -> ParallelConfig:
        """`gpus` processes: CFG-parallel as far as each loop's passes go, the rest sequence parallel (or
        `ulysses` sequence-parallel ranks within each pass, the rest CFG-parallel)."""
        check_count("gpus", gpus)
        ulysses = 1 if ulysses is None else ulysses
        check_count("ulysses", ulysses)
        if gpus % ulysses:
            raise InvalidParameter(
                "ulysses", ulysses, f"does not divide gpus={gpus}", f"one of {divisors(gpus)}"
            )
        return cls(cfg=gpus // ulysses, ulysses=ulysses, **options)

    @classmethod
    def of(cls, value: Any) -> ParallelConfig | None:
        """What `parallel=` may be: None, a ParallelConfig, a GPU count, or a mapping of the fields."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return None if value == 1 else cls.for_gpus(value)
        if isinstance(value, str):
            return cls.of(parse_spec(value))
        if isinstance(value, Mapping):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known - {"gpus"})
            if unknown:
                raise InvalidParameter(
                    "parallel", dict(value), f"has unknown keys {unknown}", f"keys: {sorted(known)}"
                )
            if "gpus" in value:
                rest = {k: v for k, v in value.items() if k != "gpus"}
                return cls.for_gpus(value["gpus"], **rest)
            return cls(**value)
        raise InvalidParameter(
            "parallel", value, "is not a ParallelConfig", "e.g. ParallelConfig(cfg=2) or 2"
        )

    @property
    def world_size(self) -> int:
        return self.cfg * self.ulysses

    def check(self, device: torch.device, local_world_size: int | None = None) -> None:
        """Every value valid, and the processes fit the machine: before anything is loaded."""
        check_count("cfg", self.cfg)
        check_count("ulysses", self.ulysses)
        if self.audio not in AUDIO_CHOICES:
            raise InvalidParameter(
                "parallel.audio", self.audio, "is not known", f"one of {list(AUDIO_CHOICES)}"
            )
        if self.text not in TEXT_CHOICES:
            raise InvalidParameter("parallel.text", self.text, "is not known", f"one of {list(TEXT_CHOICES)}")
        if not self.timeout_s > 0:
            raise InvalidParameter("parallel.timeout_s", self.timeout_s, "must be positive", "e.g. 600")
        if device.type == "cuda":
            if device.index is not None:
                raise InvalidParameter(
                    "device", str(device), f"names one GPU, but {self.world_size} processes use one GPU each",
                    'use device="cuda": process r runs on cuda:r',
                )  # fmt: skip
            here = torch.cuda.device_count()
            wanted = self.world_size if local_world_size is None else local_world_size
            if wanted > here:
                raise InvalidParameter(
                    "gpus", self.world_size, f"is more than the {here} GPU(s) of this machine",
                    f"at most {here}" if here else 'use device="cpu" (one process per rank, gloo)',
                )  # fmt: skip
        elif device.type != "cpu":
            raise InvalidParameter(
                "device", str(device), "cannot run several processes", 'use "cuda" or "cpu"'
            )


def parse_spec(text: str) -> dict[str, Any]:
    """The CLI's "N[:key=value,...]" (`--gpus 4:ulysses=2,audio=shard`) as ParallelConfig.of's mapping."""
    head, _, rest = text.strip().partition(":")
    spec: dict[str, Any] = {"gpus": _integer("gpus", head)}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if not equals or key not in ("ulysses", "audio", "text", "vae"):
            raise InvalidParameter(
                "gpus", text, f"has {item!r}", "e.g. 4:ulysses=2,audio=shard,text=split,vae=off"
            )
        if key == "ulysses":
            spec[key] = _integer(key, value)
        elif key == "vae":
            if value not in SWITCHES:
                raise InvalidParameter("parallel.vae", value, "is not on or off", "vae=on or vae=off")
            spec[key] = SWITCHES[value]
        else:
            spec[key] = value
    return spec


def _integer(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidParameter(name, text, "is not a whole number", f"e.g. {name}=2") from None


def check_count(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidParameter(name, value, "must be an integer >= 1")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
