"""LTX-2 / LTX-2.3 text+image-to-video with sound, as a package (docs/architecture.md):

* pipeline.py   `LTX2Pipeline`: load, validate, hand the request to its recipe
* recipes/      one file per variant (one-stage, two-stage, distilled, hq, keyframe-interpolation, ic-lora,
                retake, audio-to-video), each a short composition of steps
* steps.py      the public steps recipes compose: encode prompts, prepare, denoise, upsample, stage-2
                noising, finish (decode and build the Result)
* denoise.py, res2s.py   the sampling loops (named passes, `LoopState`, CUDA graphs)
* conditioning/ image, keyframe, control-video, retake-window and input-audio items behind one interface
* params.py, latents.py, text.py, components.py, decode.py, lora.py, official.py: the parts
"""
