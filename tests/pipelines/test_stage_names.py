"""Every family names its stages from one vocabulary, so the CLI line, the server's job record and the web
page read the same words whatever the model."""

from __future__ import annotations

from ditto.engine import Engine

STAGES = {
    "validate",
    "encode_text",
    "encode_image",
    "prepare_latents",
    "denoise",
    "denoise_stage_1",
    "upsample",
    "denoise_stage_2",
    "decode",
}
SMALL = {
    "tiny-ltx2": dict(height=64, width=64, num_frames=9, num_inference_steps=1),
    "tiny-flux2-klein": dict(height=64, width=64, num_inference_steps=1),
    "tiny-qwen-image": dict(height=32, width=32, num_inference_steps=1),
}


def test_every_family_times_its_stages_with_the_shared_names() -> None:
    for model, size in SMALL.items():
        engine = Engine.from_pretrained(model)
        events = []
        result = engine.generate(prompt="a fox", seed=0, progress=events.append, **size)
        assert set(result.timings) <= STAGES, (model, sorted(result.timings))
        assert {"denoise", "decode"} <= set(result.timings), model
        assert {event.stage for event in events} <= STAGES, model
