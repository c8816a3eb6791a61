"""Qwen-Image and Qwen-Image-Edit-Plus: the pipelines (pipeline.py) and their steps, one concern per file.

components.py  loading a diffusers folder          params.py    request parameters and their checks
text.py        Qwen2.5-VL prompt encoding           latents.py   noise, token layout, reference images, decode
schedule.py    Qwen-Image's sigmas                  steps.py     the steps before denoising
denoise.py     the denoising loop (true CFG as named passes)
"""
