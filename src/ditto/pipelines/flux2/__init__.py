"""FLUX.2 Klein: the pipeline (pipeline.py) and its steps, one concern per file.

components.py  loading a diffusers folder        params.py      request parameters and their checks
text.py        the Qwen3 prompt encoder          references.py  reference images -> latent tokens
latents.py     latent layout and position ids    schedule.py    Klein's sigmas
steps.py       the steps around denoising        denoise.py     the denoising loop (CFG as named passes)
"""
