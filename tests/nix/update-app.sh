#!/usr/bin/env bash
# `nix run .#update` (nix/update.sh), run with only the tools the app declares
# in flake.nix (runtimeInputs) on PATH: a plain update runs nixgen, then the
# server's step, and reports the first failure's status without skipping the
# other; with arguments only nixgen runs. nixgen itself is stood in for by a
# recorder: its own tests are in crates/nixgen.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A copy of the checkout to update.
work=$tmp/checkout
mkdir -p "$work/nix/packages/scrypted"
cp flake.nix "$work/"
cp nix/update.sh "$work/nix/"
cp nix/packages/scrypted/update.sh nix/packages/scrypted/pin.json "$work/nix/packages/scrypted/"

# The tools of the app's runtimeInputs (nixgen, git, coreutils, curl, jq,
# gnutar, gzip, gnused, gnugrep, nix, nodejs) and bash, nothing else.
bin=$tmp/bin
mkdir "$bin"
for tool in bash git curl jq tar gzip sed grep nix npm node \
  cat cp mv rm mkdir mktemp dirname basename chmod cmp cut head tail tr sort seq sha512sum base64 stat env; do
  path=$(command -v "$tool") || fail "host tool $tool is missing"
  ln -s "$path" "$bin/$tool"
done
cat >"$bin/nixgen" <<EOF
#!$(command -v bash)
printf '%s\n' "\$*" >>"$tmp/nixgen.calls"
exit \${NIXGEN_STATUS:-0}
EOF
chmod +x "$bin/nixgen"

# The server's step has nowhere to go: a closed port answers at once.
closed=http://127.0.0.1:9
run_app() {
  (cd "$work" && env -i PATH="$bin" HOME="$tmp" SCRYPTED_GITHUB_API=$closed SCRYPTED_GITHUB=$closed \
    NIXGEN_STATUS="${NIXGEN_STATUS:-0}" bash nix/update.sh "$@")
}

echo "--- a plain update"
status=0
run_app >"$tmp/out" 2>&1 || status=$?
# Indented and labelled: the server step's curl error is the point of this case.
echo "the app's output (its server step must fail: GitHub is a closed port here):"
sed 's/^/  | /' "$tmp/out"
[[ $(cat "$tmp/nixgen.calls") == "update --root $work" ]] || fail "nixgen was called as: $(cat "$tmp/nixgen.calls")"
grep -q "scrypted update: cannot read $closed/repos/koush/scrypted/commits" "$tmp/out" ||
  fail "the server's step did not run, or did not say why it failed"
[[ $status -eq 2 ]] || fail "the server's failure should make the app exit 2, got $status"
echo "ok: nixgen and the server step each ran; the failure is reported"

echo "--- with arguments, only nixgen"
: >"$tmp/nixgen.calls"
NIXGEN_STATUS=1 run_app --check >"$tmp/out" 2>&1 && fail "nixgen's exit 1 was swallowed" || status=$?
[[ $status -eq 1 ]] || fail "expected nixgen's status 1, got $status"
[[ $(cat "$tmp/nixgen.calls") == "update --root $work --check" ]] || fail "nixgen was called as: $(cat "$tmp/nixgen.calls")"
grep -q "arguments given" "$tmp/out" || fail "the skipped steps were not mentioned"
grep -q "^scrypted update" "$tmp/out" && fail "the server step ran although arguments were given"
echo "ok: arguments go to nixgen alone, and its status is the app's"

echo "update-app: all checks passed"
