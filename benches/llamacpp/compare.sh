#!/usr/bin/env bash
# pp512 / tg128 of the LFM2-VL-450M text tower (LFM2-350M shapes, random
# weights) on this CPU: our engine in each CPU weight format against
# llama.cpp's llama-bench on GGUFs of the same shapes, interleaved over
# ROUNDS rounds so that a noisy neighbour hits both alike. See README.md.
#
# With GGUF_DIR/mmproj-lfm2-vl-450m-random-{f16,bf16}.gguf and llama-mtmd-cli
# present it also times one 512×512 image through the vision tower and
# connector (image512) on both engines.
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin GGUF_DIR=/path/to/ggufs \
#     [LLAMA_BIN_NOBF16=/path/to/build-nobf16/bin] [ROUNDS=3] [THREADS=2] \
#     bash benches/llamacpp/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLAMA_BIN:?the bin folder of a llama.cpp build (llama-bench)}"
: "${GGUF_DIR:?folder with lfm2-350m-random-{bf16,q8_0,q4_0}.gguf}"
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
FORMATS=${FORMATS-"native bf16dot int8 q8_0 q4_0"}
GGUFS=${GGUFS-"bf16 q8_0 q4_0"}
# The GGUFs our engine also runs as files (`bench --model`): the same bytes
# as llama.cpp reads, Q6_K head and all.
OURS_GGUFS=${OURS_GGUFS-"q8_0 q4_0"}
cargo build --release --quiet -p cli
ours=target/release/lfm2vl
dir=${SYNTH_DIR:-/tmp/lfm2vl-synthetic}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# One line per run: "round engine weights pp512 tg128" (tokens/s).
llama() { # bin gguf label
  "$1/llama-bench" -m "$2" -p 512 -n 128 -t "$THREADS" -r 3 -o csv 2>/dev/null >"$out" || return 0
  python3 - "$r" "$3" "$out" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[3])))
pp = next(float(x["avg_ts"]) for x in rows if x["n_prompt"] == "512")
tg = next(float(x["avg_ts"]) for x in rows if x["n_gen"] == "128")
print(f"round {sys.argv[1]} llama.cpp {sys.argv[2]:<16} pp512 {pp:8.1f} tg128 {tg:7.1f}")
PY
}
# image512: ours from `bench --json` (median of 5), llama.cpp the median of
# the warm encodes of 6 copies of one 512×512 image in one process (the first
# encode is cold; `mtmd batch encoding done` covers the tower and projector).
image_round() {
  python3 benches/llamacpp/make_img512.py "$out.png" >/dev/null
  for f in $FORMATS; do
    $ours bench --synthetic 450m --dir "$dir" --threads "$THREADS" --weights "$f" \
        --prompt 16 --generate 4 --reps 5 --json >"$out" 2>/dev/null || continue
    python3 - "$r" "$f" "$out" <<'PY'
import json, sys
ms = json.load(open(sys.argv[3]))["image512_ms"]
print(f"round {sys.argv[1]} lfm2vl-rs {sys.argv[2]:<16} image512 {ms:7.1f} ms")
PY
  done
  for mm in f16 bf16; do
    local imgs=()
    for _ in 1 2 3 4 5 6; do imgs+=(--image "$out.png"); done
    "$LLAMA_BIN/llama-mtmd-cli" -m "$GGUF_DIR/lfm2-350m-random-bf16.gguf" \
        --mmproj "$GGUF_DIR/mmproj-lfm2-vl-450m-random-$mm.gguf" "${imgs[@]}" \
        -p "Describe." -n 1 -t "$THREADS" -c 4096 --chat-template chatml 2>&1 |
      grep -o 'mtmd batch encoding done in [0-9.]* ms' | tail -n +2 | awk '{print $6}' |
      sort -n | awk -v r="$r" -v mm="$mm" '{a[NR]=$1} END {printf "round %s llama.cpp mmproj %-5s image512 %7.1f ms\n", r, mm, a[int((NR+1)/2)]}'
  done
  rm -f "$out.png"
}

for r in $(seq 1 "$ROUNDS"); do
  for f in $FORMATS; do
    if ! $ours bench --synthetic 450m --dir "$dir" --no-image --threads "$THREADS" \
        --weights "$f" --json >"$out" 2>/dev/null; then
      echo "round $r lfm2vl-rs $f: not available on this CPU"
      continue
    fi
    python3 - "$r" "$f" "$out" <<'PY'
import json, sys
v = json.load(open(sys.argv[3]))
print(f"round {sys.argv[1]} lfm2vl-rs {sys.argv[2]:<16} pp512 {v['pp512']:8.1f} tg128 {v['tg128']:7.1f}")
PY
  done
  for g in $OURS_GGUFS; do
    f="$GGUF_DIR/lfm2-350m-random-$g.gguf"
    [ -f "$f" ] || continue
    $ours bench --model "$f" --no-image --threads "$THREADS" --json >"$out" 2>/dev/null || continue
    python3 - "$r" "$g" "$out" <<'PY'
import json, sys
v = json.load(open(sys.argv[3]))
print(f"round {sys.argv[1]} lfm2vl-rs {sys.argv[2] + '.gguf':<16} pp512 {v['pp512']:8.1f} tg128 {v['tg128']:7.1f}")
PY
  done
  for g in $GGUFS; do
    llama "$LLAMA_BIN" "$GGUF_DIR/lfm2-350m-random-$g.gguf" "$g"
  done
  if [ -n "${LLAMA_BIN_NOBF16:-}" ]; then
    llama "$LLAMA_BIN_NOBF16" "$GGUF_DIR/lfm2-350m-random-bf16.gguf" "bf16-no-vdpbf16ps"
  fi
  if [ -x "$LLAMA_BIN/llama-mtmd-cli" ] && [ -f "$GGUF_DIR/mmproj-lfm2-vl-450m-random-bf16.gguf" ]; then
    image_round
  fi
done
