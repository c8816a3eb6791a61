"""Who may talk to the server: a Host allow-list (DNS rebinding), an Origin check (cross-site requests from
a browser), and API keys. Each job belongs to the key that made it (`scope["state"]["owner"]`, the key's
hash; "" when keys are off), and the routes show a key only its own jobs.

Keys come from `--api-key`, the DITTO_API_KEY variable and a keys file (one key a line, `#` comments).
With keys on, every route but /health and the web page's static files needs `Authorization: Bearer KEY`
(what OpenAI's clients send).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ditto.errors import DittoError
from ditto.server.errors import send_error
from ditto.server.metrics import Metrics
from ditto.server.middleware import HttpLayer

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
OPEN_ROUTES = frozenset({"/health", "/"})  # and the web page's files (ui.py), which hold no secret
OPEN_PREFIXES = ("/ui/",)
KEY_VARIABLE = "DITTO_API_KEY"


def key_owner(key: str) -> str:
    """What the store keeps of a key: enough of its hash to tell keys apart, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def read_keys(given: Iterable[str] = (), keys_file: str | os.PathLike | None = None) -> list[str]:
    keys = [key for key in given if key]
    if os.environ.get(KEY_VARIABLE):
        keys.append(os.environ[KEY_VARIABLE])
    if keys_file is not None:
        try:
            lines = Path(keys_file).read_text().splitlines()
        except OSError as exc:
            raise DittoError(f"--api-keys-file {keys_file}: cannot read it ({exc.strerror})") from None
        keys += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return keys


def host_name(host_header: str) -> str:
    """'example.com:80' -> 'example.com'; '[::1]:8000' -> '::1'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass(frozen=True)
class Access:
    keys: tuple[str, ...] = ()
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES  # "*" in it: any host
    cors_origins: tuple[str, ...] = ()
    owners: dict[str, str] = field(default_factory=dict, compare=False)  # key -> owner, filled at build

    @classmethod
    def build(
        cls, keys: Iterable[str] = (), bind_host: str = "127.0.0.1", extra_hosts: Iterable[str] = (),
        cors_origins: Iterable[str] = (),
    ) -> Access:  # fmt: skip
        keys = tuple(dict.fromkeys(keys))
        hosts = set(LOOPBACK_NAMES) | {host_name(h) if h != "*" else "*" for h in extra_hosts}
        if bind_host not in WILDCARD_HOSTS:
            hosts.add(host_name(bind_host))
        return cls(keys, frozenset(hosts), tuple(cors_origins), {key: key_owner(key) for key in keys})

    def owner_of(self, authorization: str) -> str | None:
        """The owner for an Authorization header; None when keys are on and it carries no valid key."""
        if not self.keys:
            return ""
        scheme, _, token = authorization.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        found = None
        for key in self.keys:  # every key compared, in constant time, whichever matches
            if hmac.compare_digest(token.encode(), key.encode()):
                found = self.owners[key]
        return found

    def host_allowed(self, host_header: str) -> bool:
        return "*" in self.allowed_hosts or host_name(host_header) in self.allowed_hosts

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        """Same-origin requests and configured CORS origins; a browser sends Origin on cross-site POSTs."""
        if origin in self.cors_origins or "*" in self.cors_origins:
            return True
        return urlsplit(origin).netloc.lower() == host_header.strip().lower()


def is_open(path: str) -> bool:
    return path in OPEN_ROUTES or path.startswith(OPEN_PREFIXES)


class Guard(HttpLayer):
    """ASGI layer: Host, then Origin, then the API key; sets the request's owner."""

    def __init__(self, app: Any, access: Access, metrics: Metrics) -> None:
        super().__init__(app, metrics)
        self.access = access

    async def handle(self, scope: dict, receive: Any, send: Any, headers: dict[str, str]) -> None:
        host, origin = headers.get("host", ""), headers.get("origin")
        if not self.access.host_allowed(host):
            message = f"host {host!r} is not served here (ditto serve --allowed-host)"
            await self._refuse(send, 400, message, "host_not_allowed")
            return
        if origin is not None and not self.access.origin_allowed(origin, host):
            message = f"requests from origin {origin!r} are not allowed (ditto serve --cors-origin)"
            await self._refuse(send, 403, message, "origin_not_allowed")
            return
        owner = self.access.owner_of(headers.get("authorization", ""))
        if owner is None and not is_open(scope["path"]):
            message = "a valid API key is required: send it as 'Authorization: Bearer KEY'"
            await self._refuse(send, 401, message, "invalid_api_key", [(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})["owner"] = owner or ""
        await self.app(scope, receive, send)

    async def _refuse(
        self, send: Any, status: int, message: str, code: str, extra: list | None = None
    ) -> None:
        self.metrics.record_rejection(code)
        await send_error(send, status, message, code, extra)
