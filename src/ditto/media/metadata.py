"""What a written file says about the request that made it, and reading it back.

PNG: one text chunk per field (tEXt, or iTXt for text beyond Latin-1). MP4: one tag per field (ffmpeg's
`use_metadata_tags`, so any key survives; PyAV and ffprobe read them). JPEG and WebP: the fields as one
JSON object in the EXIF ImageDescription (ASCII-escaped, as EXIF text is ASCII). Every format also names
the software. `read_metadata` gives the same dict back for each.
"""

from __future__ import annotations

import json
from pathlib import Path

EXIF_DESCRIPTION = 0x010E
EXIF_SOFTWARE = 0x0131
SOFTWARE_KEY = "software"


def software() -> str:
    from ditto import __version__

    return f"ditto {__version__}"


def with_software(metadata: dict[str, str]) -> dict[str, str]:
    return {**metadata, SOFTWARE_KEY: software()} if metadata else {}


def png_info(metadata: dict[str, str]):
    """PIL's PngInfo holding one text chunk per field (None for no metadata)."""
    if not metadata:
        return None
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in with_software(metadata).items():
        info.add_text(key, value)  # tEXt when Latin-1, iTXt (UTF-8) otherwise
    return info


def exif(metadata: dict[str, str]):
    """An EXIF block holding the fields as JSON (None for no metadata)."""
    if not metadata:
        return None
    from PIL import Image

    block = Image.Exif()
    block[EXIF_DESCRIPTION] = json.dumps(metadata)  # ensure_ascii: EXIF text is ASCII
    block[EXIF_SOFTWARE] = software()
    return block


def image_save_options(image_type: str, metadata: dict[str, str]) -> dict:
    """PIL save keywords that embed `metadata` in a file of `image_type`."""
    if not metadata:
        return {}
    if image_type == "PNG":
        return {"pnginfo": png_info(metadata)}
    return {"exif": exif(metadata)}


def read_metadata(path: str | Path) -> dict[str, str]:
    """The fields a ditto-written PNG, JPEG, WebP or MP4 records ({} when it records none)."""
    path = Path(path)
    if path.suffix.lower() == ".mp4":
        import av

        with av.open(str(path)) as container:
            tags = dict(container.metadata)
        return {key: value for key, value in tags.items() if key not in FFMPEG_TAGS}
    from PIL import Image

    with Image.open(path) as image:
        if image.format == "PNG":
            return dict(image.text)
        block = image.getexif()
    try:
        fields = json.loads(block.get(EXIF_DESCRIPTION, "{}"))
    except json.JSONDecodeError:  # a description some other program wrote
        return {}
    return (
        {**fields, SOFTWARE_KEY: block.get(EXIF_SOFTWARE, "")} if isinstance(fields, dict) and fields else {}
    )


# Tags the MP4 muxer writes by itself, not part of the request.
FFMPEG_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder")
