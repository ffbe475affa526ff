#!/usr/bin/env bash
# On the GPU device machine, after `source .gpu-kit/s/setup.sh`: rayvllm and bare `vllm serve`
# 0.26.0 on the same H100 with identical engine arguments, measured interleaved in one run by
# `rayvllm bench --compare`. Both engines share the GPU, so each gets the same memory fraction.
#
#   start            rayvllm first (cold torch.compile cache), then bare vLLM (warm cache);
#                    both left running (setsid). Records seconds to the first token.
#   bench            the sweep; writes $OUT/gpu/report.{json,png}
#   restart-rayvllm  SIGTERM rayvllm and start it again (warm cache); seconds to first token.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /tmp/logs
MODEL=/tmp/m NAME=mistral-7b-dummy
MEM=${MEM:-0.44} MAXLEN=${MAXLEN:-4096}
INGRESS=${INGRESS:-haproxy}

first_token() {  # url t0 seconds -> prints seconds from t0 to the first generated token
  for _ in $(seq 1 "$3"); do
    if curl -sf -m 20 "$1/v1/completions" -H 'content-type: application/json' \
        -d "{\"model\": \"$NAME\", \"prompt\": \"hi\", \"max_tokens\": 1}" >/dev/null; then
      python3 -c "import time; print(round(time.time() - $2, 1))"; return 0
    fi
    sleep 1
  done
  echo "no token from $1" >&2; return 1
}

start_rayvllm() {
  cat > /tmp/rayvllm.yaml <<YAML
models:
  - name: $NAME
    source: $MODEL
    engine_args: {load_format: dummy, max_model_len: $MAXLEN, gpu_memory_utilization: $MEM}
    deployment:
      num_replicas: 1
      max_ongoing_requests: 2048
      ray_actor_options: {num_gpus: 1, num_cpus: 1}
http: {host: 127.0.0.1, port: 8000, ingress: $INGRESS}
YAML
  t0=$(python3 -c "import time; print(time.time())")
  setsid python3 -m rayvllm.cli.main serve --config /tmp/rayvllm.yaml \
    > /tmp/logs/rayvllm.log 2>&1 < /dev/null &
  first_token http://127.0.0.1:8000 "$t0" "${WAIT:-560}" || { tail -40 /tmp/logs/rayvllm.log; return 1; }
}

case "${1:-}" in
start)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  s=$(start_rayvllm) || exit 1; echo "rayvllm first token after ${s} s (cold compile cache)"
  t0=$(python3 -c "import time; print(time.time())")
  setsid python3 -m vllm.entrypoints.cli.main serve "$MODEL" --served-model-name "$NAME" \
    --port 8100 --load-format dummy --max-model-len "$MAXLEN" --gpu-memory-utilization "$MEM" \
    > /tmp/logs/bare.log 2>&1 < /dev/null &
  b=$(first_token http://127.0.0.1:8100 "$t0" 420) || { tail -40 /tmp/logs/bare.log; exit 1; }
  echo "bare vLLM first token after ${b} s (warm compile cache)"
  echo "{\"rayvllm_cold_cache_s\": $s, \"bare_warm_cache_s\": $b}" > /tmp/logs/startup.json
  ;;
restart-rayvllm)
  # SIGTERM: `rayvllm serve` shuts Serve down, so replicas stop their engines; a forced
  # `ray stop` alone orphans vLLM's EngineCore and its GPU memory.
  pkill -TERM -f "rayvllm.cli.main serve"
  for _ in $(seq 1 60); do pgrep -f "rayvllm.cli.main serve" >/dev/null || break; sleep 1; done
  python3 -m ray.scripts.scripts stop >/dev/null 2>&1
  s=$(start_rayvllm) || exit 1; echo "rayvllm first token after ${s} s (warm compile cache)"
  echo "{\"rayvllm_warm_cache_s\": $s}" > /tmp/logs/restart.json
  ;;
bench)
  python3 -m rayvllm.cli.main bench \
    --compare "bare-vllm=http://127.0.0.1:8100,rayvllm=http://127.0.0.1:8000" \
    --model "$NAME" --tokenizer "$MODEL" --input-len 512 --output-len 128 \
    --concurrency "${LEVELS:-1,16,64,256}" --warmup "${WARMUP:-8}" ${NUM_PROMPTS:+--num-prompts $NUM_PROMPTS} \
    --output "$OUT/gpu"
  ;;
*) echo "usage: $0 start|bench|restart-rayvllm" >&2; exit 2 ;;
esac
cp /tmp/logs/*.log /tmp/logs/*.json "$OUT/" 2>/dev/null; true
