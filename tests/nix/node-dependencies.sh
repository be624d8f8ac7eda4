#!/usr/bin/env bash
# llm's native npm dependencies, as the plugin set builds them: its generated
# package.nix through the real builder, which hands the lock nixgen pinned
# (nix/plugins/llm/package-lock.json) to the real nix/plugin-node-dependencies.nix;
# every package fetched for real by its integrity, the host's npm and node
# standing in for nixpkgs' buildNodeModules and the server's node
# (tests/nix/lib/node-dependencies.nix). Checks the directory Scrypted expects
# and the link the NixOS module lays out, then what must fail: a tampered
# integrity, a lock that is not the plugin's.
#
# With a real Scrypted (SCRYPTED_SERVER, SCRYPTED_SERVER_TOKEN_FILE,
# SCRYPTED_SERVER_VOLUME, SCRYPTED_SERVER_LOG; see README, "real-server tier"),
# started WITHOUT npm on its PATH, the directory is also laid into its volume,
# llm deployed by the real sideloadd, and the server must report its native
# dependencies up to date. Skipped otherwise, saying so.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

lock=nix/plugins/llm/package-lock.json
[[ -f $lock ]] || {
  echo "FAIL: $lock is missing; nixgen pins it (nix run .#update)" >&2
  exit 1
}
lock=$(realpath "$lock")
node_version=$(node --version | tr -d v)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

harness=(tests/nix/lib/node-dependencies.nix --argstr name llm --argstr nodeVersion "$node_version")
# nix-build of an attribute of the harness, or of its withLock applied to a lock.
build() { nix-build --no-out-link "${harness[@]}" "$@"; }
build_with_lock() { nix-build --no-out-link -E "(import ./tests/nix/lib/node-dependencies.nix { name = \"llm\"; nodeVersion = \"$node_version\"; }).withLock $1"; }
eval_json() { nix-instantiate --eval --strict --json "${harness[@]}" -A "$1"; }

echo "--- building llm's dependency directory (passthru.nodeDependencies) from $lock"
out=$(build -A nodeDependencies 2>"$tmp/build.log") || {
  tail -n 30 "$tmp/build.log" >&2
  fail "the dependency directory does not build"
}
plugin=$(build -A plugin 2>"$tmp/plugin.log") || fail "the plugin does not build: $(tail -n 5 "$tmp/plugin.log")"
dir_name=$(eval_json nodeDependencies.directoryName | jq -r .)

expected_dir="n-node-v$(node -p process.versions.modules)-linux-$(node -p process.arch)"
[[ $dir_name == "$expected_dir" ]] || fail "directory named $dir_name, Scrypted looks for $expected_dir"
echo "ok: named $dir_name, as Scrypted names it for this node"

cmp -s "$out/package.json" "$out/package.installed.json" || fail "package.installed.json differs from package.json"
# Scrypted compares the JSON text of the two dependency lists, so order matters.
[[ $(jq -c .dependencies "$out/package.installed.json") == $(jq -c .optionalDependencies "$plugin/package.json") ]] ||
  fail "dependencies $(jq -c .dependencies "$out/package.installed.json") are not llm's optionalDependencies $(jq -c .optionalDependencies "$plugin/package.json")"
jq -e 'has("optionalDependencies") or has("devDependencies") or has("scripts") | not' "$out/package.json" >/dev/null ||
  fail "package.json keeps optionalDependencies, devDependencies or scripts"
jq -e --slurpfile p "$plugin/package.json" '(del(.dependencies) | to_entries) == ($p[0] | del(.dependencies, .optionalDependencies, .devDependencies, .scripts) | to_entries)' \
  "$out/package.json" >/dev/null || fail "package.json is not the plugin's own, reduced as Scrypted reduces it"
echo "ok: package.json and package.installed.json are what Scrypted writes after its npm install"

installed=$(find -L "$out/node_modules" -name package.json -path '*/node_modules/*/package.json' \
  -not -path '*/node_modules/*/*/*/package.json' -o -name package.json -path '*/node_modules/@*/*/package.json' |
  wc -l)
pinned=$(jq '[.packages | keys[] | select(. != "")] | length' "$lock")
((installed >= pinned)) || fail "$installed packages installed, the lock pins $pinned"
for dep in $(jq -r '.optionalDependencies | keys[]' "$plugin/package.json"); do
  jq -e --arg n "$dep" '.name == $n' "$out/node_modules/$dep/package.json" >/dev/null 2>&1 ||
    fail "$dep is not installed at the top of the directory's node_modules"
done
echo "ok: node_modules holds the $pinned pinned packages, llm's dependencies at its top"

provision=$(eval_json provision)
jq -e --arg dir "$dir_name" --arg out "$out" '
  .directories == ["plugins", "plugins/@scrypted", "plugins/@scrypted/llm"]
  and .symlinks == [{path: "plugins/@scrypted/llm/\($dir)", target: $out}]' <<<"$provision" >/dev/null ||
  fail "passthru.provision is $provision"
echo "ok: passthru.provision links plugins/@scrypted/llm/$dir_name to it"

echo "--- what must fail"
jq '(.packages | to_entries | map(select(.key != "")) | .[0].key) as $k | .packages[$k].integrity = "sha512-" + ("A" * 86) + "=="' \
  "$lock" >"$tmp/tampered.json"
if build_with_lock "$tmp/tampered.json" >/dev/null 2>"$tmp/tampered.log"; then
  fail "a lock with a wrong integrity built"
fi
grep -q "hash mismatch" "$tmp/tampered.log" || fail "a wrong integrity failed for another reason: $(tail -n 5 "$tmp/tampered.log")"
echo "ok: a tampered integrity fails the fetch"

jq '.packages[""].dependencies |= (to_entries | .[1:] | from_entries)' "$lock" >"$tmp/other.json"
if build_with_lock "$tmp/other.json" >/dev/null 2>"$tmp/other.log"; then
  fail "a lock of other dependencies than the plugin's built"
fi
grep -q "optionalDependencies differ from the pinned lock" "$tmp/other.log" ||
  fail "a foreign lock failed for another reason: $(tail -n 5 "$tmp/other.log")"
echo "ok: a lock that is not the plugin's is refused"

echo "--- a real Scrypted loads llm with no npm"
for v in SCRYPTED_SERVER SCRYPTED_SERVER_TOKEN_FILE SCRYPTED_SERVER_VOLUME SCRYPTED_SERVER_LOG; do
  if [[ -z ${!v:-} ]]; then
    echo "skipped: $v is not set (a real Scrypted started without npm on its PATH; see README, real-server tier)"
    exit 0
  fi
done
sideloadd=${SIDELOADD:-target/debug/sideloadd}
[[ -x $sideloadd ]] || fail "$sideloadd not found; build it with cargo build -p sideloadd"
plugin_volume=$SCRYPTED_SERVER_VOLUME/plugins/@scrypted/llm
mkdir -p "$plugin_volume"
ln -sfn "$out" "$plugin_volume/$dir_name"
jq -n --arg server "$SCRYPTED_SERVER" --arg token "$SCRYPTED_SERVER_TOKEN_FILE" --arg state "$tmp/state" \
  --arg volume "$SCRYPTED_SERVER_VOLUME" --arg path "$plugin" \
  '{server: $server, tokenFile: $token, stateDir: $state, volume: $volume, readyTimeoutSecs: 30,
    plugins: [{name: "@scrypted/llm", path: $path}]}' >"$tmp/config.json"
log_lines=$(wc -l <"$SCRYPTED_SERVER_LOG")
"$sideloadd" run --config "$tmp/config.json" || fail "sideloadd could not deploy llm"
for _ in $(seq 100); do
  tail -n +"$((log_lines + 1))" "$SCRYPTED_SERVER_LOG" | grep -q "loaded @scrypted/llm" && break
  sleep 0.1
done
new_log=$(tail -n +"$((log_lines + 1))" "$SCRYPTED_SERVER_LOG")
grep -q "native dependencies (up to date)" <<<"$new_log" ||
  fail "the server did not find llm's native dependencies up to date: $(grep -i 'native dep\|npm' <<<"$new_log" | head -n 5)"
grep -q "loaded @scrypted/llm" <<<"$new_log" || fail "llm did not load: $(tail -n 20 <<<"$new_log")"
[[ -L $plugin_volume/$dir_name ]] || fail "Scrypted replaced the dependency directory"
echo "ok: Scrypted found llm's native dependencies up to date and loaded it, with no npm"
