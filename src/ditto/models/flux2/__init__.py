"""FLUX.2 networks written natively (diffusers parameter names)."""

from ditto.models.flux2.transformer import Flux2Transformer

__all__ = ["Flux2Transformer"]
