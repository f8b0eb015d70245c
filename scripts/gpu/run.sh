#!/usr/bin/env bash
# Runs on the GPU machine (no dotnet, no network, PyTorch with CUDA installed), from the repository root, with .gpu
# carried (see pack.sh). Unpacks the runtime, runs the Gpu test category, the tuning run (new table in
# $OUT/tuning.json, timings in $OUT/tune.md), our GPU benchmarks and the PyTorch benchmarks over the same shapes, and
# prints one table (also written to $OUT/table.md).
# Budget: the whole script stays under BUDGET_S seconds (default 330), so two full runs plus one machine start (~2 min)
# fit into 15 minutes of device time. Every stage has its own limit, cut to what is left of the budget; a stage with
# under 5 s left is skipped and says so.
#   bash scripts/gpu/run.sh            on the GPU machine
#   bash scripts/gpu/run.sh --local    here, without a GPU: ILGPU CPU accelerator, tiny shapes, no PyTorch timing
set -uo pipefail
cd "$(dirname "$0")/../.."
local_mode=0
[ "${1:-}" = "--local" ] && local_mode=1
OUT=${OUT:-$(mktemp -d)}
BUDGET_S=${BUDGET_S:-330}
started=$SECONDS
mkdir -p "$OUT"
[ -f .gpu/dotnet-runtime.tar.xz ] || { echo "run.sh: .gpu/ missing: run scripts/gpu/pack.sh first and carry .gpu" >&2; exit 2; }

rt=/tmp/mdm-dotnet
if [ ! -x "$rt/dotnet" ]; then mkdir -p "$rt" && xz -dc .gpu/dotnet-runtime.tar.xz | tar -C "$rt" -xf -; fi
export MDM_REPO_ROOT=$PWD   # the tests find configs/ here (the published test app runs from its own folder)
export DOTNET_ROOT=$rt PATH=$rt:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
apps=/tmp/mdm-apps
rm -rf "$apps" && mkdir -p "$apps" && xz -dc .gpu/apps.tar.xz | tar -C "$apps" -xf -
# stage_limit LIMIT: LIMIT cut to the budget left; prints 0 when under 5 s are left.
stage_limit() {
  local left=$((BUDGET_S - (SECONDS - started)))
  if [ "$left" -lt 5 ]; then echo 0; elif [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}
# stage LIMIT TITLE: prints the stage header with its limit; returns 1 (skip) when the budget is spent.
stage() {
  local limit; limit=$(stage_limit "$1")
  if [ "$limit" = 0 ]; then echo "== $2: skipped, budget of ${BUDGET_S}s spent =="; return 1; fi
  echo "== $2 (limit ${limit}s, $((SECONDS - started))s of ${BUDGET_S}s used) =="
  lim=$limit
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'

if [ $local_mode = 1 ]; then
  # The tensor-core kernels on the emulated warp primitives are slow there (each warp barrier is an OS-thread rendezvous).
  filter="FullyQualifiedName~IlgpuCpu|FullyQualifiedName~Mdm.Tests.TensorCore"; device=ilgpu-cpu; quick=--quick; test_limit=600; tune_limit=120
  BUDGET_S=${BUDGET_S_LOCAL:-900}
else
  filter="TestCategory=Gpu"; device=cuda; quick=; test_limit=90; tune_limit=90
fi

echo "budget: ${BUDGET_S}s for this run; stage limits: tests ${test_limit}s, tune ${tune_limit}s, benchmarks 40s, labs 25s + 15s, PyTorch 30s, end to end 25s per pass, sampling 40s per pass, eager vs CUDA graph 30-40s per pass (later stages get what is left)"
test_rc=0
stage "$test_limit" "tests ($filter)" && {
timeout "$lim" "$apps/tests/Mdm.Tests" --filter "$filter" --output Detailed 2>&1 | tee "$OUT/tests.log" | grep -E "^(passed|failed|skipped)|total:|failed:|succeeded:|skipped:|error" | tail -80
test_rc=${PIPESTATUS[0]}
}

if [ $local_mode = 0 ]; then
  # NCCL on one GPU (no mpirun there: a one-rank communicator): the collective check all-reduces a buffer of known sums,
  # then 2 training steps reduce their gradients through NCCL (MDM_NCCL=1): in the default 25 MB buckets (its 87 MB of
  # gradients in 5) queued from the backward, and in one all-reduce after it (--grad-buckets off); allreduce_seconds is
  # NCCL's exposed one-rank overhead.
  stage 90 "NCCL: one-rank all-reduce of a known buffer, 2 training steps through NCCL with and without buckets" && {
  timeout "$lim" dotnet "$apps/tests/Mdm.Train.dll" collective-check --nccl --elements 1000003 2>&1 | tee "$OUT/nccl-check.log"
  for buckets in 25 off; do
    rm -rf /tmp/mdm-nccl-run
    MDM_NCCL=1 timeout "$lim" dotnet "$apps/tests/Mdm.Train.dll" train --preset gpu-demo --batch 8 --steps 2 --sample-every 0 --grad-buckets $buckets \
      --out /tmp/mdm-nccl-run 2>&1 | tee "$OUT/nccl-train-buckets-$buckets.log" | grep -E "data-parallel|gradients|step|mdm:"
    cp /tmp/mdm-nccl-run/metrics.jsonl "$OUT/nccl-metrics-buckets-$buckets.jsonl" 2>/dev/null &&
      echo "buckets $buckets: $(grep -o '"step":[0-9]*\|"seconds":[0-9.e-]*\|"allreduce_seconds":[0-9.e-]*' "$OUT/nccl-metrics-buckets-$buckets.jsonl" | paste -sd' ')"
  done
  }
fi

# The tuning table: every variant per shape class of the configs, checked and timed; commit $OUT/tuning.json as
# src/Mdm.Kernels/Gpu/Tuning/tuning.json after reading $OUT/tune.md (docs/architecture.md, "Tuning table").
tune_rc=0
stage "$tune_limit" "tune ($device): kernel variants per shape class" && {
timeout "$lim" "$apps/bench/Mdm.Bench" tune --device "$device" $quick --out "$OUT" --budget-s $((lim / 2)) 2>&1 | tee "$OUT/tune.log" | grep -v "^attention\|^gemm\|^conv"
tune_rc=${PIPESTATUS[0]}
[ -f "$OUT/tune.md" ] && cat "$OUT/tune.md"
}

stage 40 "Mdm benchmarks ($device)" && \
timeout "$lim" "$apps/bench/Mdm.Bench" gpu --device "$device" $quick --json "$OUT/mdm.json" 2>&1 | tee "$OUT/bench.log"

if [ $local_mode = 0 ]; then
  stage 25 "kernel lab: attention v1 (SIMT) vs v2 (tensor cores, UseTensorCoreAttention), head dims 32-128, masks" && \
  timeout "$lim" "$apps/bench/Mdm.Bench" lab attention 2>&1 | tee "$OUT/lab-attention.log"
  stage 15 "kernel lab: GroupNorm+FiLM+SiLU v1 two-pass vs v2 one-pass vs v3 warp rows (the tuning table's groupnorm variants)" && \
  timeout "$lim" "$apps/bench/Mdm.Bench" lab groupnorm 2>&1 | tee "$OUT/lab-groupnorm.log"
fi

if [ $local_mode = 1 ]; then
  echo "== PyTorch benchmarks (listed only) =="
  python3 scripts/gpu/torch_bench.py --list $quick
else
  stage 30 "PyTorch benchmarks" && \
  timeout "$lim" python3 scripts/gpu/torch_bench.py --json "$OUT/torch.json" 2>&1 | tee "$OUT/torch.log"
fi

if [ $local_mode = 0 ]; then
  # End to end: our training step (bf16 autocast, tensor cores) and, where tools/torch_nested_unet.py is present, the
  # same network from the same config in PyTorch eager autocast. "config:batch:steps:timeout" entries.
  for spec in ${STEP_SPECS:-gpu-demo:32:4:25 imagenet-64-256:8:3:25}; do
    IFS=: read -r cfg batch steps limit <<<"$spec"
    stage "$limit" "end-to-end training step: $cfg, batch $batch" || continue
    # One more step after the timed ones: device time per op and kernel (stream markers, no host sync) and memory by
    # category; it is left out of the median. --graph: the step's denoiser forward eager against a replayed CUDA graph.
    timeout "$lim" "$apps/bench/Mdm.Bench" step --config "configs/$cfg.json" --batch "$batch" --device cuda --steps "$steps" --bf16 \
      --profile --memory-report --graph --json "$OUT/mdm.json" 2>&1 | tee "$OUT/step-$cfg.log" | grep -v "^step "
    if [ -f tools/torch_nested_unet.py ] && stage "$limit" "PyTorch eager step: $cfg"; then
      timeout "$lim" python3 tools/torch_nested_unet.py --config "configs/$cfg.json" --bench --batch "$batch" --steps "$steps" --json "$OUT/torch.json" 2>&1 | tail -4
    fi
  done
  # Sampling speed: DDPM over every resolution at once with guidance, ours and the PyTorch twin. "config:batch:steps:timeout".
  for spec in ${SAMPLE_SPECS:-imagenet-64-256:8:250:40}; do
    IFS=: read -r cfg batch steps limit <<<"$spec"
    stage "$limit" "sampling: $cfg, batch $batch, $steps steps" || continue
    timeout "$lim" "$apps/bench/Mdm.Bench" sample --config "configs/$cfg.json" --batch "$batch" --steps "$steps" --device cuda --bf16 \
      --json "$OUT/mdm.json" 2>&1 | tee "$OUT/sample-$cfg.log"
    if [ -f tools/torch_nested_unet.py ] && stage "$limit" "PyTorch sampling: $cfg"; then
      timeout "$lim" python3 tools/torch_nested_unet.py --config "configs/$cfg.json" --sample --batch "$batch" --sample-steps "$steps" \
        --json "$OUT/torch.json" 2>&1 | tail -2
    fi
  done
  # Launch overhead: the sampler eager, then with its denoiser call replayed as a CUDA graph (one capture, then a replay
  # per step; same samples), fewer steps so both passes fit. "config:batch:steps:timeout".
  for spec in ${GRAPH_SPECS:-gpu-demo:8:50:30 imagenet-64-256:8:20:40}; do
    IFS=: read -r cfg batch steps limit <<<"$spec"
    stage "$limit" "sampling eager vs CUDA graph: $cfg, batch $batch, $steps steps" || continue
    timeout "$lim" "$apps/bench/Mdm.Bench" sample --config "configs/$cfg.json" --batch "$batch" --steps "$steps" --device cuda --bf16 \
      --graph --json "$OUT/mdm.json" 2>&1 | tee "$OUT/sample-graph-$cfg.log"
  done
fi

echo "== table =="
python3 scripts/gpu/compare.py "$OUT/mdm.json" "$OUT/torch.json" | tee "$OUT/table.md"
echo "tests exit code: $test_rc; tune exit code: $tune_rc; $((SECONDS - started))s of the ${BUDGET_S}s budget; files in $OUT"
[ "$test_rc" = 0 ] || exit "$test_rc"
exit "$tune_rc"
