#!/usr/bin/env bash
# Benchmark for sideloadd on a REAL Scrypted (prints figures; not a test; run by hand).
#
#   SCRYPTED_START=/path/to/start.sh tests/bench/sideloadd-real.sh [PLUGIN_COUNTS]
#
# SCRYPTED_START starts one Scrypted with a fresh volume given as its argument and
# prints `export SCRYPTED_SERVER=... SCRYPTED_SERVER_TOKEN_FILE=...` lines; a STOP
# script is called the same way (SCRYPTED_STOP, default: kill SCRYPTED_SERVER_PID).
# For each count (default "15 50"; each plugin is a node process of ~70 MB): first
# boot by a curl loop, by sideloadd without load confirmation, and confirming
# every load (goal: <= 1.5x unconfirmed); then the no-change run (goal < 100 ms).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${SCRYPTED_START:?set SCRYPTED_START to a script that starts a real Scrypted}"
counts=${1:-15 50}

cargo build --release --quiet -p sideloadd -p fake-scrypted
bin=$PWD/target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now_ms() { date +%s%3N; }

start() { # $1 = volume; sets SCRYPTED_SERVER* variables
  eval "$("$SCRYPTED_START" "$1" 2>/dev/null)"
}
stop() {
  if [ -n "${SCRYPTED_STOP:-}" ]; then "$SCRYPTED_STOP" "$SCRYPTED_SERVER_VOLUME" >/dev/null; else
    kill "$SCRYPTED_SERVER_PID"
    while kill -0 "$SCRYPTED_SERVER_PID" 2>/dev/null; do sleep 0.1; done
  fi
}
config() { # $1 = count, $2 = state dir
  python3 - "$1" "$work" "$SCRYPTED_SERVER" "$SCRYPTED_SERVER_TOKEN_FILE" "$SCRYPTED_SERVER_VOLUME" "$2" <<'PY'
import json, sys
n, w, server, tok, vol, state = sys.argv[1:]
json.dump({"server": server, "tokenFile": tok, "stateDir": state, "volume": vol, "readyTimeoutSecs": 60,
           "plugins": [{"name": f"@scrypted/bench-{i}", "path": f"{w}/p/{i}"} for i in range(1, int(n) + 1)]},
          open(f"{w}/config.json", "w"))
PY
}
# Not in a subshell: the server it starts must be stopped by the caller.
sideload() { # $1 = label, $2 = count, rest: env; sets $wall (ms)
  start "$work/vol-$1-$2"
  config "$2" "$work/state-$1-$2"
  local t0
  t0=$(now_ms)
  env "${@:3}" RUST_LOG=warn "$bin/sideloadd" run --config "$work/config.json" >&2
  wall=$(($(now_ms) - t0))
}

for n in $counts; do
  for i in $(seq 1 "$n"); do
    [ -d "$work/p/$i" ] || "$bin/fake-scrypted" make-plugin "$work/p/$i" "@scrypted/bench-$i" \
      --version "1.0.$i" --padding-bytes $((200 * 1024))
  done
  start "$work/vol-curl-$n"
  token=$(cat "$SCRYPTED_SERVER_TOKEN_FILE")
  t0=$(now_ms)
  for i in $(seq 1 "$n"); do
    curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data-binary "@$work/p/$i/package.json" "$SCRYPTED_SERVER/web/component/script/setup?npmPackage=@scrypted/bench-$i" >/dev/null
    curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/zip' \
      --data-binary "@$work/p/$i/plugin.zip" "$SCRYPTED_SERVER/web/component/script/deploy?npmPackage=@scrypted/bench-$i" >/dev/null
  done
  curl_ms=$(($(now_ms) - t0))
  stop
  sideload plain "$n" SIDELOADD_BENCH_SKIP_LOAD_CONFIRMATION=1
  plain_ms=$wall
  stop
  sideload confirmed "$n"
  confirmed_ms=$wall
  t0=$(now_ms)
  RUST_LOG=warn "$bin/sideloadd" run --config "$work/config.json" >&2
  again_ms=$(($(now_ms) - t0))
  stop
  python3 -c "
n, c, p, s, a = $n, $curl_ms, $plain_ms, $confirmed_ms, $again_ms
print(f'{n:3d} plugins: curl loop {c:6d} ms | sideloadd unconfirmed {p:6d} ms | load-confirmed {s:6d} ms '
      f'= {s / p:4.2f}x (goal <= 1.5x) | no-change run {a} ms (goal < 100 ms)')"
done
