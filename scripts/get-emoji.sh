#!/usr/bin/env bash
# Fetches the Twemoji data set (npm emoji-datasource-twitter@16.0.0) into data/emoji/ (git-ignored).
#
#   usage: scripts/get-emoji.sh            (from anywhere; paths are relative to the repository root)
#
# Keeps only what Mdm reads: emoji.json (names, categories, sheet positions), the 64 px sprite sheet
# img/twitter/sheets-clean/64.png, and the package's LICENSE and README.
# Licence: the package (code/data) is MIT; the Twemoji graphics are "Twemoji graphics by Twitter/jdecked, CC-BY 4.0":
# credit them wherever samples or models trained on them are shown.
set -euo pipefail

package="emoji-datasource-twitter"
version="16.0.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="$root/data"
target="$data/emoji"
tarball="$data/$package-$version.tgz"

if [[ -f "$target/emoji.json" && -f "$target/img/twitter/sheets-clean/64.png" ]]; then
  echo "emoji data already present in $target"
  exit 0
fi

command -v npm >/dev/null || { echo "get-emoji.sh: npm is required (node.js); install it and rerun" >&2; exit 1; }
mkdir -p "$data"
if [[ ! -f "$tarball" ]]; then
  echo "fetching $package@$version with npm pack (about 62 MB) ..."
  npm pack "$package@$version" --pack-destination "$data" --silent >/dev/null
fi

staging="$(mktemp -d "$data/.emoji-XXXXXX")"
trap 'rm -rf "$staging"' EXIT
tar -xzf "$tarball" -C "$staging" \
  package/emoji.json package/LICENSE package/README.md package/img/twitter/sheets-clean/64.png
rm -rf "$target"
mv "$staging/package" "$target"
rm -f "$tarball"
echo "emoji data ready in $target ($(du -sh "$target" | cut -f1))"
