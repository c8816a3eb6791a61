"""Qwen2.5-VL prompt encoding for Qwen-Image, as diffusers 0.42.1 does it.

The prompt goes into a chat template; the last hidden state of the valid tokens is kept, minus the first
`drop` tokens (the template's system part), and the prompts of a batch are right-padded with zeros and a
0/1 mask. The edit model adds "Picture i: <|vision_start|><|image_pad|><|vision_end|>" per image, which the
VL processor expands to one placeholder per merged vision patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# diffusers 0.42.1 pipeline_qwenimage.py: prompt_template_encode / prompt_template_encode_start_idx
T2I_TEMPLATE = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, "
    "spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
T2I_DROP = 34
# pipeline_qwenimage_edit_plus.py
EDIT_TEMPLATE = (
    "<|im_start|>system\nDescribe the key features of the input image (color, shape, size, texture, objects, "
    "background), then explain how the user's text instruction should alter or modify the image. Generate a "
    "new image that meets the user's requirements while maintaining consistency with the original input where "
    "appropriate.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)
EDIT_DROP = 64
EDIT_PICTURE = "Picture {}: <|vision_start|><|image_pad|><|vision_end|>"
IMAGE_TOKEN = "<|image_pad|>"
TOKENIZER_MAX_LENGTH = 1024


@dataclass
class TextEmbeddings:
    embeds: torch.Tensor  # [B, L, D]
    mask: torch.Tensor | None  # [B, L] 0/1, None when every token is valid (as the reference)

    def repeat(self, times: int, max_length: int | None = None) -> TextEmbeddings:
        """Truncate to `max_length` tokens, then repeat each prompt `times` times in a row."""
        embeds, mask = self.embeds, self.mask
        if max_length is not None:
            embeds = embeds[:, :max_length]
            mask = mask[:, :max_length]
        embeds = embeds.repeat_interleave(times, dim=0)
        mask = mask.repeat_interleave(times, dim=0)
        # The reference drops an all-ones mask, which lets attention run unmasked.
        return TextEmbeddings(embeds, None if bool(mask.all()) else mask)


def last_hidden_state(text_encoder: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The encoder's final (normed) hidden state, without running the LM head over the vocabulary.

    The reference asks the full model for hidden_states[-1]; the inner model's last_hidden_state is the same
    tensor, and skipping the 152k-wide LM head saves most of the encoder's work on the full model.
    """
    return text_encoder.model(**inputs, use_cache=False).last_hidden_state


def pack_valid(
    hidden: torch.Tensor, attention_mask: torch.Tensor, drop: int, dtype: torch.dtype
) -> TextEmbeddings:
    """Keep each prompt's valid tokens after the first `drop`, right-pad to the longest, with a 0/1 mask."""
    keep = attention_mask.bool()
    rows = [hidden[b][keep[b]][drop:] for b in range(hidden.shape[0])]
    length = max(row.shape[0] for row in rows)
    embeds = hidden.new_zeros(len(rows), length, hidden.shape[-1])
    mask = torch.zeros(len(rows), length, dtype=torch.long, device=hidden.device)
    for b, row in enumerate(rows):
        embeds[b, : row.shape[0]] = row
        mask[b, : row.shape[0]] = 1
    return TextEmbeddings(embeds.to(dtype), mask)


@torch.inference_mode()
def encode_text(
    tokenizer: Any, text_encoder: Any, prompts: list[str], device: torch.device
) -> TextEmbeddings:
    """Text-to-image prompts through the template, tokenizer and Qwen2.5-VL language model."""
    texts = [T2I_TEMPLATE.format(p) for p in prompts]
    tokens = tokenizer(
        texts, max_length=TOKENIZER_MAX_LENGTH + T2I_DROP, padding=True, truncation=True, return_tensors="pt"
    ).to(device)
    inputs = {"input_ids": tokens.input_ids, "attention_mask": tokens.attention_mask}
    hidden = last_hidden_state(text_encoder, inputs)
    return pack_valid(hidden, tokens.attention_mask, T2I_DROP, text_encoder.dtype)


def vl_inputs(
    tokenizer: Any, image_processor: Any, texts: list[str], images: list[Any]
) -> dict[str, torch.Tensor]:
    """What transformers' Qwen2VLProcessor produces for image-only input: pixel patches, their grid, and the
    text with each image placeholder repeated once per merged patch (grid t*h*w / merge_size^2)."""
    vision = image_processor(images=images, return_tensors="pt")
    grids = vision["image_grid_thw"]
    merge = image_processor.merge_size**2
    counts = iter(int(grid.prod()) // merge for grid in grids)
    expanded = []
    for text in texts:
        pieces = text.split(IMAGE_TOKEN)
        out = pieces[0]
        for piece in pieces[1:]:
            out += IMAGE_TOKEN * next(counts) + piece
        expanded.append(out)
    tokens = tokenizer(expanded, padding=True, return_tensors="pt")
    return {
        "input_ids": tokens["input_ids"],
        "attention_mask": tokens["attention_mask"],
        "pixel_values": vision["pixel_values"],
        "image_grid_thw": grids,
    }


@torch.inference_mode()
def encode_edit_text(
    tokenizer: Any,
    image_processor: Any,
    text_encoder: Any,
    prompts: list[str],
    condition_images: list[Any],
    device: torch.device,
) -> TextEmbeddings:
    """Edit prompts with their condition images through the VL template and the full Qwen2.5-VL."""
    pictures = "".join(EDIT_PICTURE.format(i + 1) for i in range(len(condition_images)))
    texts = [EDIT_TEMPLATE.format(pictures + p) for p in prompts]
    inputs = {
        k: v.to(device) for k, v in vl_inputs(tokenizer, image_processor, texts, condition_images).items()
    }
    inputs["pixel_values"] = inputs["pixel_values"].to(text_encoder.dtype)
    hidden = last_hidden_state(text_encoder, inputs)
    return pack_valid(hidden, inputs["attention_mask"], EDIT_DROP, text_encoder.dtype)
