#!/usr/bin/env bash
# Evaluates the NixOS module (modules/) with lib.evalModules against stand-ins
# for the NixOS options it touches and for pkgs (tests/nix/module-eval.nix):
# sideload config and unit hardening, unknown-plugin assertions, client role,
# an upstream services.scrypted, no secret in anything bound for the store.
#
# Needs a nixpkgs lib tree: NIXPKGS_LIB=/path (a nixpkgs or nixpkgs.lib
# checkout, or its lib/ directory). Without it this test skips; CI has no
# nixpkgs and no network to GitHub, so there it always skips. The full NixOS
# evaluation and the VM test run with `nix flake check` on a Nix machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ -z ${NIXPKGS_LIB:-} ]]; then
  echo "SKIP module-eval: NIXPKGS_LIB is not set (point it at a nixpkgs lib tree to evaluate the module)"
  exit 0
fi
if [[ -f $NIXPKGS_LIB/lib/default.nix ]]; then
  lib_dir=$NIXPKGS_LIB/lib
elif [[ -f $NIXPKGS_LIB/default.nix && -f $NIXPKGS_LIB/modules.nix ]]; then
  lib_dir=$NIXPKGS_LIB
else
  echo "module-eval: NIXPKGS_LIB=$NIXPKGS_LIB holds no nixpkgs lib (lib/default.nix)" >&2
  exit 1
fi
lib_dir=$(cd "$lib_dir" && pwd)
command -v nix-instantiate >/dev/null || {
  echo "module-eval: nix-instantiate not found" >&2
  exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A made-up token: the test checks that its text never shows up in anything
# the module puts into the store.
secret="test-token-$RANDOM$RANDOM-not-for-the-store"
printf '%s' "$secret" >"$tmp/token"

result=$(nix-instantiate --eval --strict --json tests/nix/module-eval.nix -A report \
  --arg lib "import $lib_dir" \
  --argstr secretFile "$tmp/token" \
  --argstr secretText "$secret")

python3 - "$result" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
for f in r["failures"]:
    print("FAIL", f)
if r["failures"]:
    sys.exit(f"module-eval: {len(r['failures'])} check(s) failed")
print(f"module-eval: {r['cases']} cases passed")
PY
