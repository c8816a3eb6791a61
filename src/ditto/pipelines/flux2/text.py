"""Klein's text encoder: Qwen3 (transformers) hidden states 9, 18, 27 of the chat-templated prompt, stacked.

Every prompt is padded to `max_sequence_length` (512) on the right, as diffusers does, and the model
runs with the padding mask over a causal attention: a valid token sees only earlier valid tokens, and
a padding token sees every valid token (the masked causal attention the official encoder uses). So
a prompt's embedding does not depend on the other prompts of its batch. Two savings that do not change
the numbers: layers above the deepest one read are not loaded (nor the LM head), and a prompt that
appears several times in a request (the empty CFG prompt, repeated prompts) is encoded once.

With `cuda_graphs` (compile=True on a GPU) the encoder's forward is recorded as a CUDA graph per batch
size and kept for later requests: every prompt has the same padded length, and eagerly the 27 layers are
bound by the host (about 25 ms for about 5 ms of GPU work on an H100). The attention mask is built here
rather than by transformers, whose mask code reads the mask's values on the host (not recordable).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ditto.acceleration.cuda_graph import PassGraphs, cuda_graphs_wanted
from ditto.errors import CheckpointError


def causal_padding_mask(mask: torch.Tensor) -> torch.Tensor | None:
    """[B, 1, L, L] bool: query i sees key j when j <= i and j is a real token (transformers' own mask for
    right-padded prompts, so a padding query sees every real token). None when nothing is padded, where
    transformers runs the attention as plainly causal (another kernel): that case stays eager."""
    if bool(mask.all()):
        return None
    length = mask.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
    return causal[None, None] & mask.bool()[:, None, None, :]


# The deepest hidden state diffusers reads (text_encoder_out_layers' default 9, 18, 27): no layer above it loads.
DEEPEST_LAYER = 27


class KleinTextEncoder:
    cuda_graphs = False  # Engine's compile=True / cuda_graphs=True: record the forward (module docstring)

    def __init__(self, tokenizer, model, device: torch.device) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self.graphs: PassGraphs | None = None  # kept across requests: the weights never move

    @property
    def num_hidden_states(self) -> int:
        """Deepest hidden-state index kept (0 = embeddings)."""
        return self.model.config.num_hidden_layers

    @classmethod
    def from_pretrained(
        cls, folder: Path, device: torch.device, dtype: torch.dtype, deepest_layer: int = DEEPEST_LAYER
    ) -> KleinTextEncoder:
        from transformers import AutoConfig, AutoTokenizer, Qwen3Model
        from transformers.utils import logging as hf_logging

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
            config = AutoConfig.from_pretrained(str(folder / "text_encoder"))
        except OSError as exc:
            raise CheckpointError(f"{folder}: cannot read the Klein tokenizer/text encoder: {exc}") from None
        config.num_hidden_layers = min(config.num_hidden_layers, deepest_layer)
        # Keep hidden_states[-1] the raw output of the last kept layer, not the final-normed one.
        config.tie_last_hidden_states = False
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the unused upper layers and LM head are expected to be skipped
        try:
            model = Qwen3Model.from_pretrained(str(folder / "text_encoder"), config=config, dtype=dtype)
        finally:
            hf_logging.set_verbosity(verbosity)
        return cls(tokenizer, model.to(device).eval(), device)

    def tokenize(self, prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                tokenize=False,
                add_generation_prompt=True,
                enable_thinking=False,
            )
            for prompt in prompts
        ]
        batch = self.tokenizer(
            texts, return_tensors="pt", padding="max_length", truncation=True, max_length=max_length
        )
        return batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)

    @torch.inference_mode()
    def encode_unique(self, prompts: list[str], max_length: int, layers: tuple[int, ...]) -> torch.Tensor:
        """[len(prompts), max_length, len(layers) * width]: the chosen hidden states, per token side by side."""
        ids, mask = self.tokenize(prompts, max_length)

        def hidden_states(ids: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor]:
            masks = {"full_attention": mask}  # prepared masks, as transformers' own generate passes them
            out = self.model(input_ids=ids, attention_mask=masks, output_hidden_states=True, use_cache=False)
            stacked = torch.stack([out.hidden_states[i] for i in layers], dim=2)  # [B, L, layers, D]
            return (stacked.flatten(2),)

        key = f"hidden states {layers}"  # one recorded pass per choice of layers and input shapes
        (hidden,) = self._graphs().call(key, hidden_states, ids, causal_padding_mask(mask))
        return hidden

    def _graphs(self) -> PassGraphs:
        wanted = cuda_graphs_wanted(self, self.device)
        if self.graphs is None or self.graphs.enabled != wanted:
            self.graphs = PassGraphs(wanted)
        return self.graphs

    def encode(
        self, prompts: list[str], max_length: int, layers: tuple[int, ...], dtype: torch.dtype
    ) -> torch.Tensor:
        """Embeddings for `prompts` in order; each distinct prompt runs through the encoder once."""
        unique = list(dict.fromkeys(prompts))
        embeds = self.encode_unique(unique, max_length, layers).to(dtype)
        index = torch.tensor([unique.index(p) for p in prompts], device=embeds.device)
        return embeds.index_select(0, index)
