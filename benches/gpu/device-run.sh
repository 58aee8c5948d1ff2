#!/usr/bin/env bash
# The wgpu timings on a lent GPU machine (the `device` tool; see
# benches/gpu/README.md). Carried paths: .gl (Vulkan loader .debs) and
# .devbin (stripped x86-64 release builds of lfm2vl and bench-kernels).
# Writes logs under $OUT and prints a short summary last.
set -uo pipefail
OUT=${OUT:-/tmp/lfm-out}
mkdir -p "$OUT"
BIN=${BIN:-.devbin}
if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    export VK_DRIVER_FILES=$icd
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu \
    --format=csv 2>&1 | tee "$OUT/gpu.txt"
export RUST_LOG=${RUST_LOG:-info}
DIR=/tmp/lfm-synthetic
steps=${STEPS:-kernels 450m 1.6b}
for s in $steps; do
    case $s in
    kernels)
        timeout 150 "$BIN/bench-kernels" --no-cpu --m 1,64,512,1024 --dtype bf16,f32 \
            2>&1 | tee "$OUT/kernels.txt" ;;
    450m | 1.6b)
        timeout 200 "$BIN/lfm2vl" bench --backend wgpu --synthetic "$s" --dir "$DIR" \
            ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench-$s.txt" ;;
    esac
    echo "== step $s: exit $?"
done
echo "===== summary"
grep -h -i "adapter\|tok/s\|image512\|ttft" "$OUT"/bench-*.txt 2>/dev/null | cut -c1-200
