#!/usr/bin/env bash
# The NixOS VM test (tests/nixos/sideload.nix) only runs on a Nix machine with
# KVM. Here its Python driver script is rendered with stand-in nodes and
# compiled, so a syntax error or a broken interpolation shows up before then.
#
# Needs a nixpkgs lib tree (NIXPKGS_LIB=/path, as for module-eval.sh); skips
# without one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ -z ${NIXPKGS_LIB:-} ]]; then
  echo "SKIP vm-script: NIXPKGS_LIB is not set (point it at a nixpkgs lib tree to render the VM test script)"
  exit 0
fi
lib_dir=$NIXPKGS_LIB
[[ -f $lib_dir/lib/default.nix ]] && lib_dir=$lib_dir/lib
if [[ ! -f $lib_dir/default.nix ]]; then
  echo "vm-script: NIXPKGS_LIB=$NIXPKGS_LIB holds no nixpkgs lib (lib/default.nix)" >&2
  exit 1
fi
lib_dir=$(cd "$lib_dir" && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nix-instantiate --eval --strict --json tests/nix/lib/vm-script.nix --arg lib "import $lib_dir" |
  python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin))' >"$tmp/driver.py"
python3 - "$tmp/driver.py" <<'PY'
import sys
source = open(sys.argv[1]).read()
compile(source, "tests/nixos/sideload.nix:testScript", "exec")
# The script must exercise what the VM test promises, not just parse.
for needle in ("a reboot deploys nothing", "plugins in place", "SCRYPTED_ADMIN_ADDRESS",
               "grep -F 'loaded {name}'", "SIGSTOP", "prebuffer-mixin",
               "/endpoint/@scrypted/core/public/", "installing package",
               "a stopped Scrypted stays stopped", 'server.fail("systemctl start scrypted-sideload.service")',
               "the plugins survive a lost volume", "rm -rf {path}",
               "pruned", "vm-test-broken", "systemd-analyze security", "-p err"):
    assert needle in source, f"VM test script lost {needle!r}"
PY
echo "vm-script: the VM test's driver script renders and compiles ($(wc -l <"$tmp/driver.py") lines)"
