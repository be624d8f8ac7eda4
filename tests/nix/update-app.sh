#!/usr/bin/env bash
# `nix run .#update` (nix/update.sh) and openvino's update step, run with only
# the tools the app declares in flake.nix (runtimeInputs) on PATH, against a
# fake registry on loopback: a plain update runs nixgen, then openvino's and
# the server's steps, and reports the first failure's status without skipping
# the others; with arguments only nixgen runs. openvino's step reads nixgen's
# registry setting, edits the checkout also when run from the store (as
# passthru.updateScript), and names a missing tool instead of blaming the
# plugin. nixgen itself is stood in for by a recorder: its own tests are in
# crates/nixgen.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD

# shellcheck source=tests/nix/lib/serve.sh
source tests/nix/lib/serve.sh
tmp=$(mktemp -d)
served_pid=
cleanup() {
  [[ -n $served_pid ]] && kill "$served_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A copy of the checkout to update.
work=$tmp/checkout
mkdir -p "$work/nix/plugins/openvino" "$work/nix/packages/scrypted"
cp flake.nix "$work/"
cp nix/update.sh "$work/nix/"
cp nix/plugins/openvino/package.nix nix/plugins/openvino/update.sh "$work/nix/plugins/openvino/"
cp nix/packages/scrypted/update.sh nix/packages/scrypted/pin.json "$work/nix/packages/scrypted/"

# The tools of the app's runtimeInputs (nixgen, git, coreutils, curl, jq,
# gnutar, gzip, gnused, gnugrep, unzip, nix, nodejs) and bash, nothing else.
bin=$tmp/bin
mkdir "$bin"
for tool in bash git curl jq tar gzip sed grep unzip nix npm node \
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

# The fake registry: a new openvino release whose requirements are the ones
# package.nix pins now, so the step can update without a hand edit.
www=$tmp/www
mkdir -p "$www/@scrypted/openvino/-" "$tmp/pkg/package/dist"
old_version=$(sed -nE 's/^  version = "([^"]*)";$/\1/p' nix/plugins/openvino/package.nix)
sed -nE 's/^    "([^"]+)" = requirement "([^"]*)" .*/\1==\2/p' nix/plugins/openvino/package.nix >"$tmp/pkg/requirements.txt"
[[ -s $tmp/pkg/requirements.txt ]] || fail "no requirement pins found in nix/plugins/openvino/package.nix"
new_version=9.9.9
echo "print('hi')" >"$tmp/pkg/main.py"
(cd "$tmp/pkg" && zip -q package/dist/plugin.zip main.py requirements.txt)
jq -n --arg v "$new_version" '{name: "@scrypted/openvino", version: $v, scrypted: {runtime: "python"}}' \
  >"$tmp/pkg/package/package.json"
tar -czf "$www/@scrypted/openvino/-/openvino-$new_version.tgz" -C "$tmp/pkg" package
integrity=sha512-$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
  "$www/@scrypted/openvino/-/openvino-$new_version.tgz")
serve "$www" "$tmp/http.log"
registry=$served_url
jq -n --arg v "$new_version" --arg i "$integrity" --arg t "$registry/@scrypted/openvino/-/openvino-$new_version.tgz" \
  '{name: "@scrypted/openvino", version: $v, dist: {integrity: $i, tarball: $t}}' >"$www/@scrypted/openvino/latest"
printf '# a comment\nregistry = "%s"  # the mirror\n\n[hold]\nregistry = "0.0.1"\n' "$registry" >"$work/nix/plugins/nixgen.toml"

# The server's step has nowhere to go: a closed port answers at once.
closed=http://127.0.0.1:9
run_app() {
  (cd "$work" && env -i PATH="$bin" HOME="$tmp" SCRYPTED_GITHUB_API=$closed SCRYPTED_GITHUB=$closed \
    NIXGEN_STATUS="${NIXGEN_STATUS:-0}" bash nix/update.sh "$@")
}

echo "--- a plain update"
status=0
run_app >"$tmp/out" 2>&1 || status=$?
cat "$tmp/out"
[[ $(cat "$tmp/nixgen.calls") == "update --root $work" ]] || fail "nixgen was called as: $(cat "$tmp/nixgen.calls")"
grep -q "openvino: $old_version -> $new_version" "$tmp/out" || fail "openvino's step did not update"
grep -q "^  version = \"$new_version\";$" "$work/nix/plugins/openvino/package.nix" || fail "package.nix keeps the old version"
grep -qF "  hash = \"$integrity\";" "$work/nix/plugins/openvino/package.nix" || fail "package.nix keeps the old hash"
grep -q "scrypted update: cannot read $closed/repos/koush/scrypted/commits" "$tmp/out" ||
  fail "the server's step did not run, or did not say why it failed"
[[ $status -eq 2 ]] || fail "the server's failure should make the app exit 2, got $status"
echo "ok: nixgen, openvino (registry from nixgen.toml) and the server step each ran; the failure is reported"

echo "--- with arguments, only nixgen"
: >"$tmp/nixgen.calls"
NIXGEN_STATUS=1 run_app --check >"$tmp/out" 2>&1 && fail "nixgen's exit 1 was swallowed" || status=$?
[[ $status -eq 1 ]] || fail "expected nixgen's status 1, got $status"
[[ $(cat "$tmp/nixgen.calls") == "update --root $work --check" ]] || fail "nixgen was called as: $(cat "$tmp/nixgen.calls")"
grep -q "arguments given" "$tmp/out" || fail "the skipped steps were not mentioned"
grep -q "^openvino\|^scrypted update" "$tmp/out" && fail "a pin step ran although arguments were given"
echo "ok: arguments go to nixgen alone, and its status is the app's"

echo "--- openvino's step as passthru.updateScript: from the store, in the checkout's root"
store_like=$tmp/store/abc-update.sh
mkdir -p "$(dirname "$store_like")"
cp nix/plugins/openvino/update.sh "$store_like"
cp nix/plugins/openvino/package.nix "$work/nix/plugins/openvino/package.nix"
(cd "$work" && env -i PATH="$bin" HOME="$tmp" bash "$store_like") >"$tmp/out" 2>&1 || fail "$(cat "$tmp/out")"
grep -q "^  version = \"$new_version\";$" "$work/nix/plugins/openvino/package.nix" ||
  fail "run from elsewhere, it did not edit the checkout: $(cat "$tmp/out")"
echo "ok: $(cat "$tmp/out")"

echo "--- openvino's step without unzip"
rm "$bin/unzip"
cp nix/plugins/openvino/package.nix "$work/nix/plugins/openvino/package.nix"
status=0
(cd "$work" && env -i PATH="$bin" HOME="$tmp" bash nix/plugins/openvino/update.sh) >"$tmp/out" 2>&1 || status=$?
[[ $status -ne 0 ]] || fail "it succeeded without unzip"
grep -q "needs unzip on PATH" "$tmp/out" || fail "a missing unzip was reported as: $(cat "$tmp/out")"
cmp -s nix/plugins/openvino/package.nix "$work/nix/plugins/openvino/package.nix" || fail "package.nix changed"
echo "ok: $(cat "$tmp/out")"
cd "$repo"
