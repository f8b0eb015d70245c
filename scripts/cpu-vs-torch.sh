#!/usr/bin/env bash
# The CPU training step side by side with PyTorch on the same machine, in one run:
#   bash scripts/cpu-vs-torch.sh [--config configs/cpu-demo.json] [--batch 32] [--steps 6] [--rounds 3]
# Rounds alternate Mdm and PyTorch so drifting machine load hits both. Both use every core (PyTorch through
# OMP_NUM_THREADS, which Debian's build otherwise sets to 1). Debian's python3-torch is installed with apt when
# missing. Prints each round, then the medians and the ratio (Mdm images/s ÷ PyTorch images/s).
set -euo pipefail
cd "$(dirname "$0")/.."
config=configs/cpu-demo.json batch=32 steps=6 rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "cpu-vs-torch: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "installing Debian's python3-torch (apt-get)"
  apt-get install -y -q python3-torch >/dev/null || { echo "cpu-vs-torch: could not install python3-torch" >&2; exit 3; }
fi
threads=$(nproc)
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
dotnet build -c Release bench/Mdm.Bench -v q -nologo >/dev/null
bench=bench/Mdm.Bench/bin/Release/net10.0/Mdm.Bench.dll
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "machine: $cpu, $threads threads for both; load average $(cut -d' ' -f1-3 /proc/loadavg)"
mdm=() torch=()
for r in $(seq "$rounds"); do
  m=$(dotnet "$bench" step --config "$config" --batch "$batch" --steps "$steps" | grep -oP 'median \K[0-9.]+(?= s/step)')
  t=$("$py" tools/torch_nested_unet.py --config "$config" --bench --device cpu --batch "$batch" --steps "$steps" | grep -oP 'median \K[0-9.]+(?= s/step)')
  echo "round $r: Mdm $m s/step, PyTorch $t s/step"
  mdm+=("$m") torch+=("$t")
done
"$py" - "$batch" "${mdm[*]}" "${torch[*]}" "$(cut -d' ' -f1-3 /proc/loadavg)" "$("$py" -c 'import torch; print(torch.__version__)')" <<'PY'
import statistics, sys
batch, mdm, torch_, load, version = int(sys.argv[1]), [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()], sys.argv[4], sys.argv[5]
m, t = statistics.median(mdm), statistics.median(torch_)
print(f"median step: Mdm {m:.3f} s ({batch / m:.1f} img/s), PyTorch {version} {t:.3f} s ({batch / t:.1f} img/s); "
      f"Mdm at {t / m:.2f}x the speed of PyTorch (load average at the end {load})")
PY
