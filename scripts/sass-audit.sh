#!/usr/bin/env bash
# The offline SASS audit (no GPU needed): fetch ptxas 12.4, write every kernel's PTX, assemble and check budgets.
# Exit 0 = all kernels within budget, 1 = a kernel broke its budget, 3 = ptxas could not be fetched.
set -uo pipefail
cd "$(dirname "$0")/.."
ptxas=$(bash scripts/get-ptxas.sh) || { echo "sass-audit: could not fetch ptxas (Debian trixie nvidia-cuda-toolkit)" >&2; exit 3; }
out=$(mktemp -d)
dotnet run -c Release --project bench/Mdm.Bench -- ptx --out "$out" >/dev/null || { echo "sass-audit: PTX generation failed" >&2; exit 1; }
python3 scripts/sass-audit.py "$out" "$(dirname "$ptxas")"
rc=$?
rm -rf "$out"
exit $rc
