"""ServerSettings: everything `ditto serve` decides besides the model, in one frozen value that
`create_app` takes (its keywords may override single fields)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ditto.server.guard import Access
from ditto.server.limits import Limits
from ditto.server.retention import Retention

DEFAULT_MAX_QUEUE = 64
DEFAULT_MAX_BODY_BYTES = 50 << 20


@dataclass(frozen=True)
class ServerSettings:
    max_queue: int = DEFAULT_MAX_QUEUE  # jobs that may wait; beyond it 429
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # a multipart body (uploads); JSON bodies get less
    shutdown_grace: float = 30.0  # seconds SIGTERM waits for the running job
    limits: Limits | None = None  # None: the served family's defaults
    retention: Retention = field(default_factory=Retention)
    access: Access = field(default_factory=Access)
    strict_size: bool = False  # refuse a size the family cannot make instead of snapping it
    max_attempts: int = 2  # starts of a job a crash may interrupt before it is failed
    body_timeout_s: float = 30.0  # the longest wait for the next part of a request body
    header_timeout_s: float = 10.0  # the longest wait for a request's headers on an open connection
    preview_every: int = 0  # a latent preview every N steps for requests that do not say (0: none)
    ui: bool = True  # the web page at / (ditto serve --no-ui: off)

    def json_body_bytes(self, limits: Limits) -> int:
        """A JSON body carries prompts and numbers: room for the prompt limit, escaped, and no more."""
        return max(1 << 20, 8 * limits.max_prompt_bytes)
