#!/usr/bin/env bash
# Every .nix file is formatted the nixfmt (RFC 166) way. nixfmt is a Haskell tool
# that neither Debian nor the package registries CI reaches carry; where it is
# missing this says so and passes, and `nix flake check` (checks.formatting) is
# the authority.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. tests/nix/lib/nix-files.sh

if ! command -v nixfmt >/dev/null; then
  echo "skipped: nixfmt is not installed here; checks.formatting runs it under nix flake check"
  exit 0
fi
mapfile -t files < <(nix_files)
nixfmt --check "${files[@]}"
echo "format: ${#files[@]} .nix files formatted ($(nixfmt --version))"
