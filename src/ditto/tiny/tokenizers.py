"""Small BPE tokenizers trained offline on a fixed text, wrapped in the transformers classes the models use."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

# A fixed corpus: the same text always trains the same vocabulary, so tiny checkpoints are reproducible.
CORPUS = [
    "a red fox in the snow, a cat on a sofa, a dog running on the beach at sunset",
    "the quick brown fox jumps over the lazy dog while the camera pans slowly to the left",
    "a photo of a city street at night with neon signs, rain, reflections and people walking",
    "an astronaut riding a horse on the moon, cinematic lighting, highly detailed, 4k",
    "a bowl of ramen with chopsticks, steam rising, close-up, shallow depth of field",
    "waves crashing on rocks, seagulls, wind, the sound of the ocean and distant thunder",
    "a woman speaking to the camera in a quiet room, soft daylight from a window",
    "Describe the image by detailing the color, shape, size, texture, quantity, text, spatial relationships",
    "system user assistant You are a helpful assistant. Picture 1: 2: 3: <|vision_start|><|image_pad|>",
    "0123456789 ,.;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~` ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz",
]


def train_bpe(
    special_tokens: list[str], vocab_size: int = 1024, metaspace: bool = False
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a BPE on CORPUS; returns (vocab, merges) with the special tokens first.

    metaspace=True trains on "▁"-marked words (SentencePiece style, as Gemma's tokenizer splits);
    otherwise byte-level (GPT-2 style, as Qwen's).
    """
    tokenizer = Tokenizer(models.BPE())
    if metaspace:
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet = sorted(set("".join(CORPUS).replace(" ", "▁")) | {"▁"})
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens, initial_alphabet=alphabet, show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    model = tokenizer.model
    vocab = tokenizer.get_vocab()
    merges = _merges_of(model)
    return vocab, merges


def _merges_of(model: models.BPE) -> list[tuple[str, str]]:
    import json

    state = json.loads(model.__getstate__() if hasattr(model, "__getstate__") else "{}")
    return [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state.get("merges", [])]


GEMMA_SPECIALS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]


def save_gemma_tokenizer(folder: Path) -> None:
    """A GemmaTokenizer (as LTX-2's Gemma-3 text encoder uses), padding side left as the official code."""
    from transformers import GemmaTokenizer

    vocab, merges = train_bpe(GEMMA_SPECIALS, metaspace=True)
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, padding_side="left")
    tokenizer.save_pretrained(str(folder))


QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<think>",
    "</think>",
]

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def save_qwen2_tokenizer(folder: Path) -> None:
    """A Qwen2Tokenizer with a Qwen3-style chat template (Klein's Qwen3 and Qwen-Image's Qwen2.5-VL)."""
    from transformers import Qwen2Tokenizer

    vocab, merges = train_bpe(QWEN_SPECIALS)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(folder))
