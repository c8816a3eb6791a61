"""FLUX.2 Klein's CFG and Qwen-Image's true CFG are named passes: a loop feature sees each transformer call
as (kind, step, sigma), and a feature that runs the block plan itself changes no bit of the result."""

from __future__ import annotations

import pytest
import torch

from ditto.runtime import PassKind, RequestLoops

COND, UNCOND = PassKind.COND, PassKind.UNCOND
STEPS = 3


class Recorder:
    """Logs every pass it wraps, then runs the plan as the plain loop would."""

    def __init__(self) -> None:
        self.log: list[tuple[tuple[PassKind, ...], int, float]] = []

    def run_blocks(self, plan, streams, ctx, inner):
        self.log.append((ctx.kinds, ctx.step, ctx.sigma))
        return inner(plan, streams, ctx)


class SplitRun:
    """Runs blocks [0, k) and then [k, end) itself, as a step cache that reuses a range would."""

    def __init__(self, k: int) -> None:
        self.k = k

    def run_blocks(self, plan, streams, ctx, inner):
        return plan.run(plan.run(streams, 0, self.k), self.k)


@pytest.fixture(scope="module")
def klein(tmp_path_factory):
    from ditto.pipelines.flux2.pipeline import Flux2KleinPipeline
    from ditto.tiny.flux2 import build_tiny_flux2_klein

    folder = tmp_path_factory.mktemp("klein-base")
    build_tiny_flux2_klein(folder, distilled=False)
    return Flux2KleinPipeline.from_pretrained(folder, torch.device("cpu"), None)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    from ditto.pipelines.qwen_image.pipeline import QwenImagePipeline
    from ditto.tiny.qwen_image import build_tiny_qwen_image

    folder = tmp_path_factory.mktemp("qwen") / "model"
    build_tiny_qwen_image(folder)
    return QwenImagePipeline.from_pretrained(folder, torch.device("cpu"), None)


def klein_denoise(pipeline, features, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Klein's steps up to the denoised latents; returns them and the loop's sigmas."""
    from ditto.pipelines.flux2 import steps
    from ditto.pipelines.flux2.denoise import denoise
    from ditto.pipelines.flux2.schedule import klein_sigmas

    c = pipeline.components
    params = pipeline.validate(prompt="a red fox", num_inference_steps=STEPS, seed=3, **kwargs)
    height, width = steps.output_size(c, params)
    embeds, negative = steps.encode_text(c, params)
    grid = steps.noise_shape(c, params, height, width)[2:]
    cond = steps.conditioning(c, embeds, negative, None, [], grid)
    latents = steps.initial_latents(c, params, height, width)
    sigmas = klein_sigmas(c.scheduler_config, STEPS, latents.shape[1])
    loops = RequestLoops("flux2-klein", params, [lambda info, f=feature: f for feature in features])
    return denoise(c, params, latents, cond, loops=loops), sigmas


def qwen_denoise(pipeline, features, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    from ditto.pipelines.qwen_image import steps
    from ditto.pipelines.qwen_image.denoise import denoise

    c = pipeline.components
    params = pipeline.validate(prompt="a red fox", num_inference_steps=STEPS, seed=3, **kwargs)
    prompts = steps.encode_prompts(params, steps.text_encoder(c), params.max_sequence_length)
    inputs = steps.denoise_inputs(c, params, prompts, (params.height, params.width))
    loops = RequestLoops("qwen-image", params, [lambda info, f=feature: f for feature in features])
    return denoise(c, inputs, loops=loops), inputs.sigmas


KLEIN = dict(height=64, width=64, max_sequence_length=32)
QWEN = dict(height=32, width=32)
CASES = {
    "klein_cfg": ("klein", klein_denoise, dict(guidance_scale=3.5, **KLEIN), (COND, UNCOND)),
    "klein_no_cfg": ("klein", klein_denoise, dict(guidance_scale=1.0, **KLEIN), (COND,)),
    "qwen_true_cfg": ("qwen", qwen_denoise, dict(negative_prompt="blurry", true_cfg_scale=4.0, **QWEN), (COND, UNCOND)),
    "qwen_no_cfg": ("qwen", qwen_denoise, dict(**QWEN), (COND,)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_feature_sees_each_named_pass(request, case):
    family, run, kwargs, kinds = CASES[case]
    recorder = Recorder()
    _, sigmas = run(request.getfixturevalue(family), [recorder], **kwargs)
    expected = [((kind,), step, sigmas[step].item()) for step in range(STEPS) for kind in kinds]
    assert recorder.log == expected
    assert all(type(sigma) is float for _, _, sigma in recorder.log)  # host floats: no device read


# Split points between blocks: the tiny Klein has 2 double-stream blocks then 2 single-stream blocks (block 2
# is where text and image are joined), the tiny Qwen-Image 2 blocks.
SPLITS = {"klein_cfg": (1, 2, 3), "qwen_true_cfg": (1,)}


@pytest.mark.parametrize("case", list(SPLITS))
def test_a_feature_running_the_plan_itself_changes_no_bit(request, case):
    family, run, kwargs, _ = CASES[case]
    pipeline = request.getfixturevalue(family)
    plain, _ = run(pipeline, [], **kwargs)
    for k in SPLITS[case]:
        split, _ = run(pipeline, [SplitRun(k)], **kwargs)
        assert torch.equal(split, plain), f"split at block {k}"
