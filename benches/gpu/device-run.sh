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
# A step is `kernels`, `recording` (host cost per dispatch, bench-recording),
# a model (`450m`, `1.6b`), or a model with one environment setting for a
# variant run: `450m@LFM_WGPU_NO_SUBGROUPS=1`.
steps=${STEPS:-kernels 450m 1.6b 450m+q4_0}
for s in $steps; do
    model=${s%%@*}
    case $s in
    recording)
        env LFM_WGPU_OPS_PER_SUBMIT=4096 LFM_WGPU_FIRST_SUBMIT=0 timeout 60 \
            "$BIN/bench-recording" 2>&1 | tee "$OUT/recording.txt"
        timeout 60 "$BIN/bench-recording" 2>&1 | tee -a "$OUT/recording.txt" ;;
    kernels)
        timeout 200 "$BIN/bench-kernels" --no-cpu --m 1,64,512,1024 --dtype ${DTYPES:-bf16,f32} \
            ${KERNEL_ARGS:-} 2>&1 | tee "$OUT/kernels.txt" ;;
    *+*)
        # A weight format: the block shaders (`--weights q4_0`: quantized at load).
        model=${s%%+*}
        timeout 200 "$BIN/lfm2vl" bench --backend wgpu --synthetic "$model" --dir "$DIR" \
            --weights "${s#*+}" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench-$model-${s#*+}.txt" ;;
    *@*)
        setting=${s#*@}
        env "$setting" timeout 120 "$BIN/lfm2vl" bench --backend wgpu --synthetic "$model" \
            --dir "$DIR" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench-$model-${setting//[^A-Za-z0-9_.-]/_}.txt" ;;
    *)
        timeout 200 "$BIN/lfm2vl" bench --backend wgpu --synthetic "$model" --dir "$DIR" \
            ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench-$model.txt" ;;
    esac
    echo "== step $s: exit $?"
done
echo "===== summary"
for f in "$OUT"/bench-*.txt; do
    echo "-- $(basename "$f")"
    grep -i "tok/s\|host work\|image512 \|ttft\|tensor-core" "$f" | cut -c1-160
done
