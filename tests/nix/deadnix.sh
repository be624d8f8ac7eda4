#!/usr/bin/env bash
# No unused bindings, lambda arguments or patterns in any .nix file (deadnix).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. tests/nix/lib/nix-files.sh

command -v deadnix >/dev/null || {
  echo "FAIL: deadnix is not installed (cargo install --locked deadnix)" >&2
  exit 1
}
mapfile -t files < <(nix_files)
deadnix --fail "${files[@]}"
echo "deadnix: ${#files[@]} .nix files clean"
