"""Native LTX-2 / LTX-2.3 networks: the audio+video transformer and the text connectors."""

from ditto.models.ltx2.connector import LTX2TextConnectors
from ditto.models.ltx2.transformer import LTX2Transformer

__all__ = ["LTX2TextConnectors", "LTX2Transformer"]
