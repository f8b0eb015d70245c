#!/usr/bin/env bash
# Runs on the GPU machine (no dotnet, no network, PyTorch with CUDA installed), from the repository root, with .gpu
# carried (see pack.sh). Unpacks the runtime, runs the Gpu test category, our GPU benchmarks and the PyTorch
# benchmarks over the same shapes, and prints one table (also written to $OUT/table.md).
#   bash scripts/gpu/run.sh            on the GPU machine
#   bash scripts/gpu/run.sh --local    here, without a GPU: ILGPU CPU accelerator, tiny shapes, no PyTorch timing
set -uo pipefail
cd "$(dirname "$0")/../.."
local_mode=0
[ "${1:-}" = "--local" ] && local_mode=1
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[ -f .gpu/dotnet-runtime.tar.xz ] || { echo "run.sh: .gpu/ missing: run scripts/gpu/pack.sh first and carry .gpu" >&2; exit 2; }

rt=/tmp/mdm-dotnet
if [ ! -x "$rt/dotnet" ]; then mkdir -p "$rt" && xz -dc .gpu/dotnet-runtime.tar.xz | tar -C "$rt" -xf -; fi
export MDM_REPO_ROOT=$PWD   # the tests find configs/ here (the published test app runs from its own folder)
export DOTNET_ROOT=$rt PATH=$rt:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
apps=/tmp/mdm-apps
rm -rf "$apps" && mkdir -p "$apps" && xz -dc .gpu/apps.tar.xz | tar -C "$apps" -xf -
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'

if [ $local_mode = 1 ]; then
  # The tensor-core kernels on the emulated warp primitives are slow there (each warp barrier is an OS-thread rendezvous).
  filter="FullyQualifiedName~IlgpuCpu|FullyQualifiedName~Mdm.Tests.TensorCore"; device=ilgpu-cpu; quick=--quick; test_limit=600
else
  filter="TestCategory=Gpu"; device=cuda; quick=; test_limit=200
fi

echo "== tests ($filter) =="
timeout "$test_limit" "$apps/tests/Mdm.Tests" --filter "$filter" --output Detailed 2>&1 | tee "$OUT/tests.log" | grep -E "^(passed|failed|skipped)|total:|failed:|succeeded:|skipped:|error" | tail -80
test_rc=${PIPESTATUS[0]}

echo "== Mdm benchmarks ($device) =="
timeout 120 "$apps/bench/Mdm.Bench" gpu --device "$device" $quick --json "$OUT/mdm.json" 2>&1 | tee "$OUT/bench.log"

if [ $local_mode = 0 ]; then
  echo "== kernel lab: attention v1 (SIMT) vs v2 (tensor cores, UseTensorCoreAttention), head dims 32-128, masks =="
  timeout 90 "$apps/bench/Mdm.Bench" lab attention 2>&1 | tee "$OUT/lab-attention.log"
  echo "== kernel lab: GroupNorm+FiLM+SiLU v1 (three sweeps) vs v2 (one-pass statistics, not promoted) =="
  timeout 60 "$apps/bench/Mdm.Bench" lab groupnorm 2>&1 | tee "$OUT/lab-groupnorm.log"
fi

echo "== PyTorch benchmarks =="
if [ $local_mode = 1 ]; then
  python3 scripts/gpu/torch_bench.py --list $quick
else
  timeout 100 python3 scripts/gpu/torch_bench.py --json "$OUT/torch.json" 2>&1 | tee "$OUT/torch.log"
fi

if [ $local_mode = 0 ]; then
  # End to end: our training step (bf16 autocast, tensor cores) and, where tools/torch_nested_unet.py is present, the
  # same network from the same config in PyTorch eager autocast. "config:batch:steps:timeout" entries.
  for spec in ${STEP_SPECS:-gpu-demo:32:4:60 imagenet-64-256:8:3:120}; do
    IFS=: read -r cfg batch steps limit <<<"$spec"
    echo "== end-to-end training step: $cfg, batch $batch =="
    timeout "$limit" "$apps/bench/Mdm.Bench" step --config "configs/$cfg.json" --batch "$batch" --device cuda --steps "$steps" --bf16 \
      --json "$OUT/mdm.json" 2>&1 | tee "$OUT/step-$cfg.log" | grep -v "^step "
    # Per-op device time (the device is synchronised around every op, so this pass is slower and not the timing above).
    MDM_PROFILE=sync timeout "$limit" "$apps/bench/Mdm.Bench" step --config "configs/$cfg.json" --batch "$batch" --device cuda --steps 1 --bf16 \
      2>&1 | tee "$OUT/profile-$cfg.log" | grep -v "^step \|^median" | head -16
    if [ -f tools/torch_nested_unet.py ]; then
      timeout "$limit" python3 tools/torch_nested_unet.py --config "configs/$cfg.json" --bench --batch "$batch" --steps "$steps" --json "$OUT/torch.json" 2>&1 | tail -3
    fi
  done
fi

echo "== table =="
python3 scripts/gpu/compare.py "$OUT/mdm.json" "$OUT/torch.json" | tee "$OUT/table.md"
echo "tests exit code: $test_rc; files in $OUT"
exit $test_rc
