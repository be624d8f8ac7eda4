#!/usr/bin/env bash
# Every .nix file in the repository parses (nix-instantiate --parse), templates
# included: nixgen renders them by plain substitution inside strings, so they
# must be valid Nix as they stand.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. tests/nix/lib/nix-files.sh

mapfile -t files < <(nix_files)
((${#files[@]})) || {
  echo "FAIL: no .nix files found" >&2
  exit 1
}
failed=0
for f in "${files[@]}"; do
  if ! nix-instantiate --parse "$f" >/dev/null; then
    echo "FAIL: $f does not parse" >&2
    failed=1
  fi
done
((failed == 0)) || exit 1
echo "parse: ${#files[@]} .nix files parse"
