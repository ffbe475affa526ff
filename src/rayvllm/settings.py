"""Secrets from the environment (prefix RAYVLLM_) or from files: the one place that reads them.
Values stay SecretStr from here on, so a repr, a log line or a traceback shows `**********`."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class SecretSettings(BaseSettings):
    """RAYVLLM_API_KEYS (comma-separated keys) and RAYVLLM_API_KEYS_FILE (one key a line)."""

    model_config = SettingsConfigDict(env_prefix="RAYVLLM_", extra="ignore")

    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None


class NoKeysError(RuntimeError):
    """Auth is on but no key was found: refuse to start rather than serve nobody (or everybody)."""


def _keys_in_file(path: Path) -> list[SecretStr]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [SecretStr(line) for line in lines if line and not line.startswith("#")]


def keys_path(keys_file: str | Path | None = None) -> Path | None:
    """The key file in use: the config's `keys_file`, else RAYVLLM_API_KEYS_FILE, else none."""
    return Path(keys_file) if keys_file else SecretSettings().api_keys_file


def load_api_keys(keys_file: str | Path | None = None) -> list[SecretStr]:
    """The API keys: from the key file (see `keys_path`), else RAYVLLM_API_KEYS. Empty when none
    is configured."""
    path = keys_path(keys_file)
    if path is not None:
        return _keys_in_file(path)
    env_keys = SecretSettings().api_keys
    if env_keys is None:
        return []
    parts = (part.strip() for part in env_keys.get_secret_value().split(","))
    return [SecretStr(part) for part in parts if part]
