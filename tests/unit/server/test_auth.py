"""API keys: 401 in OpenAI's shape without a valid one, open health routes, keys from a file or
the environment, and a key that never shows in logs, errors, metrics or rendered manifests."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from rayvllm.config import ServeConfig
from rayvllm.engine.fake import FakeEngine
from rayvllm.server.app import create_app
from rayvllm.server.auth import KeyRing, key_id
from rayvllm.server.services import LocalService
from rayvllm.settings import NoKeysError, load_api_keys

MODEL = "smollm2-135m-instruct"
KEY = "sk-live-7f3a9c2e1b8d4f6a0e5c3b9d"
NEAR_MISS = KEY[:-1] + "X"  # a wrong key is a secret too: it may be a typo of a real one
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def auth_config(**auth: Any) -> ServeConfig:
    return ServeConfig.model_validate(
        {
            "engine": "fake",
            "fake": {"ttft_ms": 0, "itl_ms": 0},
            "auth": {"enabled": True, **auth},
            "limits": {"requests_per_minute": 100},
        }
    )


async def serve(cfg: ServeConfig) -> AsyncIterator[httpx.AsyncClient]:
    engine = FakeEngine(MODEL, cfg.fake)
    await engine.start()
    app = create_app({MODEL: LocalService(engine, request_timeout_s=30)}, cfg)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c
    await engine.shutdown()


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("RAYVLLM_API_KEYS", f"sk-other-key, {KEY}")
    async for c in serve(auth_config()):
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    "route, body",
    [
        ("/v1/chat/completions", CHAT),
        ("/v1/completions", {"prompt": "hi", "max_tokens": 2}),
        ("/vllm", {"prompt": "hi", "max_tokens": 2}),
    ],
)
@pytest.mark.parametrize(
    "headers, said",
    [
        ({}, "didn't provide an API key"),
        (bearer(NEAR_MISS), "Incorrect API key"),
        ({"Authorization": f"Basic {KEY}"}, "didn't provide an API key"),
        ({"Authorization": "Bearer "}, "didn't provide an API key"),
    ],
)
async def test_without_a_valid_key_the_api_is_401_in_openais_shape(
    client: httpx.AsyncClient,
    route: str,
    body: dict[str, Any],
    headers: dict[str, str],
    said: str,
) -> None:
    r = await client.post(route, json=body, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    err = r.json()["error"]
    assert err["type"] == "authentication_error" and err["code"] == "invalid_api_key"
    assert said in err["message"]


async def test_a_valid_key_is_served_on_every_api_route(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEY))).is_success
    assert (await client.get("/v1/models", headers=bearer(KEY))).is_success
    assert (await client.get("/v1/models")).status_code == 401
    r = await client.post(
        "/vllm", json={"prompt": "hi", "max_tokens": 2}, headers={"authorization": f"bearer {KEY}"}
    )  # scheme is case-blind
    assert r.status_code == 200


async def test_health_ready_and_metrics_stay_open(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/ready", "/metrics"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/version")).status_code == 401


async def test_open_routes_are_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYVLLM_API_KEYS", KEY)
    async for c in serve(auth_config(open_routes=["/health"])):
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/metrics")).status_code == 401


async def test_keys_from_a_file_one_per_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAYVLLM_API_KEYS", raising=False)
    keys = tmp_path / "keys"
    keys.write_text(f"# rotated 2026-01\n{KEY}\n\nsk-second\n")
    async for c in serve(auth_config(keys_file=str(keys))):
        r = await c.post("/v1/chat/completions", json=CHAT, headers=bearer("sk-second"))
        assert r.status_code == 200
        assert (
            await c.post("/v1/chat/completions", json=CHAT, headers=bearer("# rotated 2026-01"))
        ).status_code == 401


def test_key_file_from_the_environment_and_reload_on_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys"
    keys.write_text("sk-old\n")
    monkeypatch.setenv("RAYVLLM_API_KEYS_FILE", str(keys))
    ring = KeyRing(None, reload_every_s=0)
    assert ring.match("sk-old") == key_id("sk-old")
    keys.write_text("sk-new\n")
    os.utime(keys, (1, 1))  # a different mtime, even on a coarse-grained filesystem
    assert ring.match("sk-new") == key_id("sk-new") and ring.match("sk-old") is None


def test_auth_on_without_any_key_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAYVLLM_API_KEYS", raising=False)
    monkeypatch.delenv("RAYVLLM_API_KEYS_FILE", raising=False)
    with pytest.raises(NoKeysError, match="RAYVLLM_API_KEYS"):
        create_app({}, auth_config())


def test_keys_are_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYVLLM_API_KEYS", KEY)
    (loaded,) = load_api_keys()
    assert KEY not in repr(loaded) and KEY not in str(loaded)
    assert key_id(KEY).startswith("key-") and KEY not in key_id(KEY)


def test_the_config_carries_the_key_file_path_never_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAYVLLM_API_KEYS", KEY)
    cfg = auth_config(keys_file="/var/run/secrets/rayvllm/api-keys")
    dumped = cfg.to_yaml()
    assert "/var/run/secrets/rayvllm/api-keys" in dumped and KEY not in dumped


async def test_the_key_never_shows_in_logs_errors_metrics_or_manifests(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for key in (KEY, NEAR_MISS):
        for route, body in (
            ("/v1/chat/completions", CHAT),
            ("/v1/chat/completions", {**CHAT, "temperature": 9}),
            ("/v1/completions", {"prompt": "x", "max_tokens": 10**6}),
            ("/vllm", {"prompt": "hi", "stream": True, "max_tokens": 2}),
            ("/v1/chat/completions", {**CHAT, "model": "nope"}),
        ):
            r = await client.post(route, json=body, headers=bearer(key))
            seen.append(r.text + str(r.headers))
    seen.append((await client.get("/metrics")).text)
    config = tmp_path / "auth.yaml"
    config.write_text(auth_config(keys_file="/etc/rayvllm/keys").to_yaml())
    from rayvllm.cli.render import app as render

    result = CliRunner().invoke(render, ["--config", str(config), "--out", str(tmp_path / "k8s")])
    assert result.exit_code == 0, result.output
    seen += [p.read_text() for p in (tmp_path / "k8s").iterdir()]
    seen += [result.output, caplog.text, *capsys.readouterr()]
    assert any("401" in s or "invalid_api_key" in s for s in seen)  # the near miss was refused
    for text in seen:
        assert KEY not in text and NEAR_MISS not in text
        assert KEY[8:20] not in text  # not even a fragment
