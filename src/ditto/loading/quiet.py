"""Third-party chatter off: ditto prints its own progress (the CLI and every spawned rank call this)."""

from __future__ import annotations


def quiet_third_party() -> None:
    """transformers/diffusers print weight-loading bars and advice to stderr; ditto prints its own progress."""
    import warnings

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for library in (diffusers_logging, transformers_logging):
        library.disable_progress_bar()
        library.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
