#!/usr/bin/env bash
# `lfm2vl serve` against llama.cpp's `llama-server` on the same GGUF, the same
# client (bench.py), one server at a time, ROUNDS interleaved rounds.
#   LLAMA_BIN=/path/to/llama.cpp/build/bin GGUF=model.gguf bash benches/serve/compare.sh
# Env: LFM2VL (our binary; default target/release/lfm2vl), PARALLEL (4),
# STREAMS (1,2,4), MAX_TOKENS (128), WORDS (16), ROUNDS (2), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/../.."
LFM2VL=${LFM2VL:-target/release/lfm2vl}
PARALLEL=${PARALLEL:-4}
STREAMS=${STREAMS:-1,2,4}
MAX_TOKENS=${MAX_TOKENS:-128}
WORDS=${WORDS:-16}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
: "${LLAMA_BIN:?set LLAMA_BIN to the llama.cpp build/bin folder}" "${GGUF:?set GGUF to a text GGUF}"
wait_up() {
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "server on :$1 did not come up" >&2
    return 1
}
bench() {
    python3 benches/serve/bench.py --url "http://127.0.0.1:$1" --streams "$STREAMS" \
        --max-tokens "$MAX_TOKENS" --prompt-words "$WORDS" --label "$2"
}
for r in $(seq "$ROUNDS"); do
    LFM_THREADS=$THREADS "$LFM2VL" serve --model "$GGUF" --port 8091 --backend cpu \
        --parallel "$PARALLEL" --max-len 1024 >/dev/null 2>&1 &
    pid=$!
    wait_up 8091 && bench 8091 "ours#$r"
    kill "$pid"; wait "$pid" || true
    "$LLAMA_BIN/llama-server" -m "$GGUF" --port 8092 -t "$THREADS" -tb "$THREADS" \
        --parallel "$PARALLEL" -c $((1024 * PARALLEL)) >/dev/null 2>&1 &
    pid=$!
    wait_up 8092 && bench 8092 "llama#$r"
    kill "$pid"; wait "$pid" || true
done
