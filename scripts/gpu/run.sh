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
  filter="FullyQualifiedName~IlgpuCpu"; device=ilgpu-cpu; quick=--quick
else
  filter="TestCategory=Gpu"; device=cuda; quick=
fi

echo "== tests ($filter) =="
timeout 200 "$apps/tests/Mdm.Tests" --filter "$filter" --output Detailed 2>&1 | tee "$OUT/tests.log" | grep -E "^(passed|failed|skipped)|total:|failed:|succeeded:|skipped:|error" | tail -80
test_rc=${PIPESTATUS[0]}

echo "== Mdm benchmarks ($device) =="
timeout 120 "$apps/bench/Mdm.Bench" gpu --device "$device" $quick --json "$OUT/mdm.json" 2>&1 | tee "$OUT/bench.log"

echo "== PyTorch benchmarks =="
if [ $local_mode = 1 ]; then
  python3 scripts/gpu/torch_bench.py --list $quick
else
  timeout 100 python3 scripts/gpu/torch_bench.py --json "$OUT/torch.json" 2>&1 | tee "$OUT/torch.log"
fi

if [ $local_mode = 0 ]; then
  echo "== end-to-end training step (gpu-demo, per-op profile) =="
  MDM_PROFILE=1 timeout 90 "$apps/bench/Mdm.Bench" step --config configs/gpu-demo.json --batch 32 --device cuda --steps 4 --json "$OUT/mdm.json" 2>&1 | tee "$OUT/step.log" | grep -v "^step " | head -60
fi

echo "== table =="
python3 scripts/gpu/compare.py "$OUT/mdm.json" "$OUT/torch.json" | tee "$OUT/table.md"
echo "tests exit code: $test_rc; files in $OUT"
exit $test_rc
