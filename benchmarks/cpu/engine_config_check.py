"""Do bare vLLM and rayvllm resolve the same engine config? vLLM logs neither max_num_seqs nor
max_num_batched_tokens, so this resolves both configs the way each server does, without
starting an engine: bare vLLM through its own CLI parser, rayvllm through the AsyncEngineArgs
its engine builds (the embedded model's EMBEDDED_ENGINE_ARGS), both with the OpenAI server's
usage context.

    python benchmarks/cpu/engine_config_check.py   # light: imports vLLM, loads no weights
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import harness as h

from rayvllm.config import EMBEDDED_ENGINE_ARGS


def summary(config: Any) -> dict[str, Any]:
    sched, cache = config.scheduler_config, config.cache_config
    return {
        "max_num_seqs": sched.max_num_seqs,
        "max_num_batched_tokens": sched.max_num_batched_tokens,
        "enable_chunked_prefill": sched.enable_chunked_prefill,
        "async_scheduling": getattr(sched, "async_scheduling", None),
        "enable_prefix_caching": cache.enable_prefix_caching,
        "kv_cache_memory_bytes": cache.kv_cache_memory_bytes,
        "dtype": str(config.model_config.dtype),
        "max_model_len": config.model_config.max_model_len,
        "compilation_mode": str(config.compilation_config.mode),
    }


def main() -> None:
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.usage.usage_lib import UsageContext
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    context = UsageContext.OPENAI_API_SERVER
    bare_argv = h.bare_vllm_cmd(8100)[3:]  # what follows `python -m vllm...api_server`
    parsed = make_arg_parser(FlexibleArgumentParser()).parse_args(bare_argv)
    bare = summary(AsyncEngineArgs.from_cli_args(parsed).create_engine_config(context))
    # As rayvllm.engine.vllm_engine.VLLMEngine.start builds them.
    ray_args = {
        "disable_log_stats": False,
        "served_model_name": h.MODEL_NAME,
        **EMBEDDED_ENGINE_ARGS,
    }
    ray_engine_args = AsyncEngineArgs(model=str(h.CHECKPOINT), **ray_args)
    ray = summary(ray_engine_args.create_engine_config(context))
    differ = sorted(k for k in bare if bare[k] != ray[k])
    print("bare   ", bare)
    print("rayvllm", ray)
    print("identical" if not differ else f"differ in {differ}")
    h.write_json(
        h.RESULTS / f"cpu-engine-config-{dt.date.today()}.json",
        {
            "what": "engine config resolved by bare vLLM's CLI and by rayvllm's engine, same flags",
            "versions": h.versions(),
            "command": "python benchmarks/cpu/engine_config_check.py",
            "bare_vllm_argv": bare_argv,
            "rayvllm_engine_args": ray_args,
            "bare_vllm": bare,
            "rayvllm": ray,
            "differ": differ,
        },
    )


if __name__ == "__main__":
    main()
