#!/usr/bin/env bash
# Every .nix file is formatted the nixfmt (RFC 166) way, as checks.formatting
# demands under `nix flake check`. nixfmt itself is a Haskell tool no registry
# reachable here carries; nixfmt-rs (crates.io `nixfmt_rs`, installed by
# .ci/run) is a reimplementation with byte-identical output to nixfmt 1.2.0.
# Where neither is installed this says so and passes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
. tests/nix/lib/nix-files.sh

if ! command -v nixfmt >/dev/null; then
  echo "SKIP format: nixfmt is not installed (cargo install --locked nixfmt_rs); checks.formatting runs it under nix flake check"
  exit 0
fi
mapfile -t files < <(nix_files)
nixfmt --check "${files[@]}"
echo "format: ${#files[@]} .nix files formatted ($(nixfmt --version))"
