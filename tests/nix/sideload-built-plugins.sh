#!/usr/bin/env bash
# The Nix side and the daemon meet here: plugins built by the real builder
# (the same harness as build-plugins.sh: real package.nix files, real fetch)
# are provisioned by the real sideloadd into the fake Scrypted server, through
# the config format the NixOS module writes. Checks that every plugin lands
# as the exact zip Nix built (Scrypted's md5-named file in the volume), and
# that a second boot deploys nothing.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# One community plugin among them: it lands under its own scope.
plugins=(snapshot homekit unifi-protect vityevato--hikvision-doorbell)
harness=tests/nix/lib/plugins.nix

tmp=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

cargo build --quiet --locked -p sideloadd -p fake-scrypted
bin=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/debug

declare -A paths names
for p in "${plugins[@]}"; do
  paths[$p]=$(nix-build --no-out-link -E "(import ./$harness { }).packages.\"$p\"")
  names[$p]=$(nix-instantiate --eval --json -E "(import ./$harness { }).packages.\"$p\".pluginName" | jq -r .)
done

token=sideload-test-token-$RANDOM$RANDOM
printf '%s\n' "$token" >"$tmp/token" # a trailing newline, as editors write it
mkdir "$tmp/volume" "$tmp/state"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

jq -n --arg server "http://127.0.0.1:$port" --arg tmp "$tmp" \
  --argjson plugins "$(for p in "${plugins[@]}"; do jq -n --arg n "${names[$p]}" --arg path "${paths[$p]}" '{name: $n, path: $path}'; done | jq -s .)" \
  '{server: $server, tokenFile: ($tmp + "/token"), stateDir: ($tmp + "/state"), volume: ($tmp + "/volume"),
    readyTimeoutSecs: 30, plugins: $plugins}' >"$tmp/config.json"
"$bin/sideloadd" check-config "$tmp/config.json"

# Scrypted takes about a second to open its port: sideloadd must wait for it.
"$bin/fake-scrypted" serve --port "$port" --token "$token" --volume "$tmp/volume" --startup-delay-ms 1000 \
  >"$tmp/server.log" 2>&1 &
server_pid=$!

deploys() {
  curl -sf "http://127.0.0.1:$port/__fake/requests" | jq '[.[] | select(.route == "deploy")] | length'
}

echo "--- first boot"
"$bin/sideloadd" run --config "$tmp/config.json" 2>"$tmp/run1.log" || {
  cat "$tmp/run1.log" >&2
  echo "FAIL: sideloadd did not provision the built plugins" >&2
  exit 1
}
for p in "${plugins[@]}"; do
  md5=$(md5sum "${paths[$p]}/plugin.zip" | cut -d' ' -f1)
  zip_file=$tmp/volume/plugins/${names[$p]}/zip/1-$md5.zip
  cmp "${paths[$p]}/plugin.zip" "$zip_file" || {
    echo "FAIL: $p: Scrypted's volume does not hold the zip Nix built ($zip_file)" >&2
    exit 1
  }
  echo "ok: $p deployed as ${zip_file#"$tmp/"}"
done
[ "$(deploys)" = "${#plugins[@]}" ] || {
  echo "FAIL: expected ${#plugins[@]} deploys, the server saw $(deploys)" >&2
  exit 1
}

echo "--- second boot, nothing changed"
"$bin/sideloadd" run --config "$tmp/config.json" 2>"$tmp/run2.log"
[ "$(deploys)" = "${#plugins[@]}" ] || {
  echo "FAIL: a second run deployed again" >&2
  cat "$tmp/run2.log" >&2
  exit 1
}
grep -q "${#plugins[@]} plugins in place, ${#plugins[@]} skipped" "$tmp/run2.log" || {
  echo "FAIL: the second run did not report every plugin in place and skipped" >&2
  cat "$tmp/run2.log" >&2
  exit 1
}
echo "ok: second run deployed nothing"

"$bin/sideloadd" status --config "$tmp/config.json"
echo "sideload-built-plugins: all checks passed"
