#!/usr/bin/env bash
# Builds what the GPU machine needs (it has no dotnet and no network) into the git-ignored folder .gpu/:
#   .gpu/dotnet-runtime.tar.xz   the .NET runtime only: dotnet, host/fxr, shared/Microsoft.NETCore.App/<ver>
#   .gpu/apps.tar.xz             framework-dependent linux-x64 publishes of tests/Mdm.Tests (an MTP executable)
#                                and bench/Mdm.Bench, as tests/ and bench/
# Then: device run with carry [".gpu"] and command "bash scripts/gpu/run.sh".
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu
rm -rf "$out" && mkdir -p "$out"
stage=$(mktemp -d)
dotnet publish tests/Mdm.Tests -c Release -r linux-x64 --self-contained false -o "$stage/tests" -v q -nologo
dotnet publish bench/Mdm.Bench -c Release -r linux-x64 --self-contained false -o "$stage/bench" -v q -nologo
# Debug symbols are not needed there.
find "$stage" -name '*.pdb' -delete
tar -C "$stage" -cf - tests bench | xz -T0 -6 > "$out/apps.tar.xz"
rm -rf "$stage"
root=$(dirname "$(readlink -f "$(command -v dotnet)")")
ver=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')
tar -C "$root" -cf - dotnet host/fxr "shared/Microsoft.NETCore.App/$ver" | xz -T0 -6 > "$out/dotnet-runtime.tar.xz"
echo "$ver" > "$out/runtime-version"
du -sh "$out"/* | sed 's/^/  /'
total=$(du -sb "$out" | cut -f1)
echo "packed $(numfmt --to=iec "$total") into $out (a device call carries at most 64 MiB including the tracked tree)"
if [ "$total" -gt $((56 * 1024 * 1024)) ]; then echo "pack.sh: $out is too large for one device call" >&2; exit 1; fi
