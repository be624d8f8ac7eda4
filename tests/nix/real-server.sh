#!/usr/bin/env bash
# Real-server tier, what the NixOS VM test also shows, against a REAL Scrypted
# (built from source: README, "real-server tier"), with plugins built by the
# real builder (tests/nix/lib/plugins.nix) and provisioned by the real sideloadd:
#   - the web UI's core is served from the pin: /endpoint/@scrypted/core/public/
#     answers and the server logs no npm install (with SCRYPTED_CORE_PLUGIN);
#   - the plugins survive a lost volume: with Scrypted stopped, its plugins/
#     directory deleted, then the whole volume, each restart gets the same
#     versions back, loaded, from the store.
# A stopped Scrypted staying stopped is systemd's (Requisite=); the VM test
# shows it. Needs SCRYPTED_START: a command that starts a real Scrypted in the
# background on a volume given as its only argument (always on the same port)
# and prints `export SCRYPTED_SERVER=... SCRYPTED_SERVER_TOKEN_FILE=...
# SCRYPTED_SERVER_LOG=... SCRYPTED_SERVER_PID=...` lines. Skipped without it.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if [[ -z ${SCRYPTED_START:-} ]]; then
  echo "skipped: SCRYPTED_START is not set (a command starting a real Scrypted; CI has none)"
  exit 0
fi
tmp=$(mktemp -d)
SCRYPTED_SERVER_PID=
cleanup() {
  [[ -n $SCRYPTED_SERVER_PID ]] && kill "$SCRYPTED_SERVER_PID" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [[ -n ${SCRYPTED_SERVER_LOG:-} ]] && tail -n 30 "$SCRYPTED_SERVER_LOG" >&2
  exit 1
}

cargo build --quiet --locked -p sideloadd
sideloadd=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/debug/sideloadd

plugins=(snapshot homekit)
entries=()
for p in "${plugins[@]}"; do
  path=$(nix-build --no-out-link -E "(import ./tests/nix/lib/plugins.nix { }).packages.$p" 2>/dev/null)
  entries+=("$(jq -nc --arg n "@scrypted/$p" --arg p "$path" '{name: $n, path: $p}')")
done
if [[ -n ${SCRYPTED_CORE_PLUGIN:-} ]]; then
  entries+=("$(jq -nc --arg p "$SCRYPTED_CORE_PLUGIN" '{name: "@scrypted/core", path: $p}')")
else
  echo "note: SCRYPTED_CORE_PLUGIN is not set; the core checks are skipped"
fi
count=${#entries[@]}

volume=$tmp/volume
start() {
  local exports
  exports=$("$SCRYPTED_START" "$volume") || fail "SCRYPTED_START $volume did not start a server"
  eval "$exports"
  log_from=$(wc -l <"$SCRYPTED_SERVER_LOG")
}
stop() {
  kill "$SCRYPTED_SERVER_PID"
  while kill -0 "$SCRYPTED_SERVER_PID" 2>/dev/null; do sleep 0.1; done
}
since_start() { tail -n +"$((log_from + 1))" "$SCRYPTED_SERVER_LOG"; }
run() { # a sideloadd run; the summary line it ends with
  jq -n --arg s "$SCRYPTED_SERVER" --arg t "$SCRYPTED_SERVER_TOKEN_FILE" --arg v "$volume" \
    --arg d "$tmp/state" --argjson p "[$(
      IFS=,
      echo "${entries[*]}"
    )]" \
    '{server: $s, tokenFile: $t, stateDir: $d, volume: $v, readyTimeoutSecs: 120, plugins: $p}' >"$tmp/config.json"
  "$sideloadd" run --config "$tmp/config.json" 2>"$tmp/run.log" || fail "sideloadd run: $(tail -n 5 "$tmp/run.log")"
  grep -oE '[0-9]+ plugins in place, [0-9]+ skipped' "$tmp/run.log" | tail -n 1
}
expect_in_place() { # $1 = what happened, $2 = the summary expected
  local summary
  summary=$(run)
  [[ $summary =~ $2 ]] || fail "$1: $summary"
  for entry in "${entries[@]}"; do
    name=$(jq -r .name <<<"$entry")
    version=$(jq -r .version "$(jq -r .path <<<"$entry")/package.json")
    since_start | grep -qF "loaded $name" || fail "$1: Scrypted did not log 'loaded $name'"
    [[ -n $(find "$volume/plugins/$name/zip" -name '*.zip' 2>/dev/null) ]] || fail "$1: $name has no zip in the volume"
    echo "ok: $1: $name $version in place and loaded ($summary)"
  done
}

echo "--- first boot"
start
expect_in_place "first boot" "^$count plugins in place, 0 skipped$"

if [[ -n ${SCRYPTED_CORE_PLUGIN:-} ]]; then
  echo "--- the web UI's core is the pinned one"
  status=$(curl -s -o /dev/null -w '%{http_code}' "$SCRYPTED_SERVER/endpoint/@scrypted/core/public/")
  [[ $status == 200 ]] || fail "/endpoint/@scrypted/core/public/ answered $status"
  if since_start | grep -F 'installing package'; then fail "Scrypted installed a package from npm"; fi
  echo "ok: /endpoint/@scrypted/core/public/ answers 200 from the pinned core; no npm install"
fi

# Scrypted keeps each plugin's zip in its database too and extracts it again
# at start, so it restores plugins/ itself; sideloadd finds them in place.
echo "--- Scrypted stopped, its plugins/ deleted, started again"
stop
rm -rf "$volume/plugins"
start
expect_in_place "plugins/ lost" "^$count plugins in place, [0-9]+ skipped$"

echo "--- Scrypted stopped, its whole volume deleted, started again"
stop
rm -rf "$volume"
start
expect_in_place "volume lost" "^$count plugins in place, 0 skipped$"
[[ $(run) == "$count plugins in place, $count skipped" ]] || fail "a run after the recovery changed something"
echo "ok: a run after the recovery changes nothing"
stop
SCRYPTED_SERVER_PID=
echo "real-server: all checks passed"
