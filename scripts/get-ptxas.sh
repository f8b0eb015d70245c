#!/usr/bin/env bash
# Fetches NVIDIA's ptxas / cuobjdump / nvdisasm 12.4 (Debian trixie non-free package nvidia-cuda-toolkit) into
# .tools/cuda without touching the machine's apt state, for the offline SASS audit (scripts/sass-audit.sh).
# The binaries need only libc; they run on bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.tools/cuda
if [ -x "$dest/usr/bin/ptxas" ]; then echo "$dest/usr/bin/ptxas"; exit 0; fi
state=$(mktemp -d)
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$dest"
mirror=$(grep -shoE "https?://deb\.debian\.org/debian/?" /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
echo "deb ${mirror%/} trixie main contrib non-free" > "$state/sources.list"
opts=(-o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$state/lists"
      -o Dir::Cache="$state/cache" -o Debug::NoLocking=1 -o APT::Architecture=amd64 -qq)
apt-get "${opts[@]}" update >&2
(cd "$state" && apt-get "${opts[@]}" download nvidia-cuda-toolkit >&2)
dpkg -x "$state"/nvidia-cuda-toolkit_*.deb "$state/x"
mkdir -p "$dest/usr/bin"
for b in ptxas cuobjdump nvdisasm; do
  src=$(find "$state/x" -name "$b" -type f | head -1)
  [ -n "$src" ] && cp "$src" "$dest/usr/bin/$b"
done
rm -rf "$state"
"$dest/usr/bin/ptxas" --version | tail -1 >&2
echo "$dest/usr/bin/ptxas"
