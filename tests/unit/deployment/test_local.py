"""`rayvllm serve` on Ray: what it asks of the local Ray it starts, and of a cluster it joins."""

from __future__ import annotations

from typing import Any

import pytest

from rayvllm.config import LocalRayConfig, ServeConfig
from rayvllm.deployment import local

ray = pytest.importorskip("ray")


class Stop(Exception):
    pass


def init_kwargs(monkeypatch: pytest.MonkeyPatch, config: ServeConfig, address: str | None) -> Any:
    seen: dict[str, Any] = {}

    def fake_init(**kwargs: Any) -> None:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(local.os, "environ", dict(local.os.environ))  # run_ray sets Ray's env
    with pytest.raises(Stop):
        local.run_ray(config, address=address)
    return seen


def test_a_local_ray_starts_without_its_dashboard_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kwargs = init_kwargs(monkeypatch, ServeConfig(engine="fake"), None)
    assert kwargs["include_dashboard"] is False and kwargs["address"] is None


def test_the_dashboard_is_a_config_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig(engine="fake", local_ray=LocalRayConfig(dashboard=True))
    assert init_kwargs(monkeypatch, config, None)["include_dashboard"] is True


def test_joining_a_cluster_leaves_its_dashboard_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs = init_kwargs(monkeypatch, ServeConfig(engine="fake"), "127.0.0.1:6379")
    assert kwargs["include_dashboard"] is None and kwargs["address"] == "127.0.0.1:6379"
