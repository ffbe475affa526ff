#!/usr/bin/env bash
# On the GPU device machine, after `source .gpu-kit/s/setup.sh`: bare `vllm serve` 0.26.0 and
# rayvllm on the same H100 with identical engine arguments, measured interleaved in one run by
# `rayvllm bench --compare`. Both engines share the GPU, so each gets the same memory fraction.
#
# usage: bash benchmarks/gpu/side_by_side.sh start   # start both servers (setsid: they outlive the call)
#        bash benchmarks/gpu/side_by_side.sh bench   # measure; writes $OUT/gpu/report.{json,png}
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" /tmp/logs
MODEL=/tmp/m NAME=mistral-7b-dummy
MEM=${MEM:-0.44} MAXLEN=${MAXLEN:-4096}
INGRESS=${INGRESS:-haproxy}

wait_ready() {  # url seconds
  for _ in $(seq 1 "$2"); do
    curl -sf -m 2 "$1/v1/models" >/dev/null && return 0; sleep 1
  done
  echo "not ready: $1" >&2; return 1
}

case "${1:-}" in
start)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  t0=$(date +%s)
  setsid python3 -m vllm.entrypoints.cli.main serve "$MODEL" --served-model-name "$NAME" \
    --port 8100 --load-format dummy --max-model-len "$MAXLEN" --gpu-memory-utilization "$MEM" \
    > /tmp/logs/bare.log 2>&1 < /dev/null &
  wait_ready http://127.0.0.1:8100 420 || { tail -40 /tmp/logs/bare.log; exit 1; }
  t1=$(date +%s); echo "bare vLLM ready in $((t1 - t0)) s (cold compile cache)"
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
  setsid python3 -m rayvllm.cli.main serve --config /tmp/rayvllm.yaml \
    > /tmp/logs/rayvllm.log 2>&1 < /dev/null &
  wait_ready http://127.0.0.1:8000 400 || { tail -60 /tmp/logs/rayvllm.log; exit 1; }
  t2=$(date +%s); echo "rayvllm ready in $((t2 - t1)) s (warm compile cache)"
  echo "{\"bare_start_s\": $((t1 - t0)), \"rayvllm_start_s\": $((t2 - t1))}" > "$OUT/startup.json"
  ;;
restart-rayvllm)  # INGRESS=haproxy|ray-proxy
  # SIGTERM: `rayvllm serve` shuts Serve down, so replicas stop their engines; a forced
  # `ray stop` alone orphans vLLM's EngineCore and its GPU memory.
  pkill -TERM -f "rayvllm.cli.main serve"
  for _ in $(seq 1 60); do pgrep -f "rayvllm.cli.main serve" >/dev/null || break; sleep 1; done
  python3 -m ray.scripts.scripts stop >/dev/null 2>&1
  sed -i "s/ingress: .*}/ingress: $INGRESS}/" /tmp/rayvllm.yaml; grep ingress /tmp/rayvllm.yaml
  t1=$(date +%s)
  setsid python3 -m rayvllm.cli.main serve --config /tmp/rayvllm.yaml \
    > /tmp/logs/rayvllm.log 2>&1 < /dev/null &
  wait_ready http://127.0.0.1:8000 "${WAIT:-500}" || { tail -30 /tmp/logs/rayvllm.log; exit 1; }
  echo "rayvllm ready in $(( $(date +%s) - t1 )) s"
  ;;
bench)
  python3 -m rayvllm.cli.main bench \
    --compare "bare-vllm=http://127.0.0.1:8100,rayvllm=http://127.0.0.1:8000" \
    --model "$NAME" --tokenizer "$MODEL" --input-len 512 --output-len 128 \
    --concurrency "${LEVELS:-1,16,64,256}" --warmup "${WARMUP:-8}" ${NUM_PROMPTS:+--num-prompts $NUM_PROMPTS} \
    --output "$OUT/gpu"
  cp /tmp/logs/*.log "$OUT/" 2>/dev/null; true
  ;;
*) echo "usage: $0 start|bench" >&2; exit 2 ;;
esac
