"""Optional Bearer API keys, checked by an ASGI middleware in front of every route but the open
ones. Past it a caller is known only by a hash of its key (its key id), never by the key."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from rayvllm.config import AuthConfig
from rayvllm.errors import AuthenticationError, error_body
from rayvllm.settings import NoKeysError, keys_path, load_api_keys

log = logging.getLogger("rayvllm.server.auth")

KEY_ID_STATE = "rayvllm_key_id"  # the scope["state"] entry (request.state) holding the key id
ANONYMOUS = "anonymous"  # the caller when auth is off: one shared identity for rate limits


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_id(key: str) -> str:
    """A stable, non-reversible name for a key: what rate limits and logs may show."""
    return "key-" + _digest(key).hex()[:16]


def caller_id(state: Any) -> str:
    """The key id the middleware stored on `request.state`, or ANONYMOUS."""
    return str(getattr(state, KEY_ID_STATE, ANONYMOUS))


class KeyRing:
    """The valid keys, held only as SHA-256 digests; re-read when the key file changes."""

    def __init__(self, keys_file: str | None, *, reload_every_s: float = 5.0) -> None:
        self._keys_file = keys_file
        self._path: Path | None = keys_path(keys_file)
        self._reload_every_s = reload_every_s
        self._checked_at = time.monotonic()
        self._mtime = self._stat()
        self._entries = self._load(load_api_keys(keys_file))

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _load(keys: Iterable[SecretStr]) -> list[tuple[bytes, str]]:
        return [(_digest(k.get_secret_value()), key_id(k.get_secret_value())) for k in keys]

    def _stat(self) -> float | None:
        try:
            return self._path.stat().st_mtime if self._path is not None else None
        except OSError:
            return None

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if self._path is None or now - self._checked_at < self._reload_every_s:
            return
        self._checked_at = now
        mtime = self._stat()
        if mtime == self._mtime:
            return
        try:
            entries = self._load(load_api_keys(self._keys_file))
        except (OSError, UnicodeDecodeError) as exc:
            log.warning(
                "keeping the old API keys: cannot read the key file (%s)", type(exc).__name__
            )
            return
        if entries:  # an empty file mid-rotation would lock everybody out
            self._entries, self._mtime = entries, mtime
            log.info("reloaded %d API keys", len(entries))

    def match(self, presented: str) -> str | None:
        """The key id of `presented`, or None. Compares digests in constant time and visits every
        key, so timing tells nothing about which key, or how much of one, matched."""
        self._maybe_reload()
        digest = _digest(presented)
        found = None
        for valid, kid in self._entries:
            if hmac.compare_digest(valid, digest):
                found = kid
        return found


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


class APIKeyMiddleware:
    """401 with OpenAI's error body unless the request carries a valid Bearer key."""

    def __init__(self, app: ASGIApp, *, keyring: KeyRing, open_routes: Iterable[str]) -> None:
        self.app = app
        self.keyring = keyring
        self.open_routes = frozenset(open_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_routes:
            await self.app(scope, receive, send)
            return
        presented = _bearer(scope)
        kid = self.keyring.match(presented) if presented is not None else None
        if kid is None:
            await _refuse(send, presented is None)
            return
        scope.setdefault("state", {})[KEY_ID_STATE] = kid
        await self.app(scope, receive, send)


async def _refuse(send: Send, missing: bool) -> None:
    # The message never echoes what was sent: a near-miss key is still a secret.
    if missing:
        message = (
            "You didn't provide an API key. Send it in the Authorization header: "
            "`Authorization: Bearer YOUR_KEY`."
        )
    else:
        message = "Incorrect API key provided."
    status, body, _ = error_body(AuthenticationError(message))
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def keyring_for(config: AuthConfig) -> KeyRing | None:
    """The KeyRing when auth is on (refusing to start without keys), else None."""
    if not config.enabled:
        try:
            configured = bool(load_api_keys(config.keys_file))
        except OSError:
            configured = False
        if configured:
            log.warning("API keys are configured but auth.enabled is false: the API is open")
        return None
    keyring = KeyRing(config.keys_file)
    if not len(keyring):
        raise NoKeysError(
            "auth.enabled is true but no API key was found: set auth.keys_file, "
            "RAYVLLM_API_KEYS_FILE or RAYVLLM_API_KEYS"
        )
    return keyring
