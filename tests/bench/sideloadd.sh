#!/usr/bin/env bash
# Benchmark for sideloadd on the fake Scrypted server (prints figures; not a test).
#
#   tests/bench/sideloadd.sh [PLUGIN_COUNTS] [BIG_ZIP_MB]
#
# PLUGIN_COUNTS is a space-separated list (default "15 50"). The fake's plugins
# take 500 ms from fork to "loaded", like the real server's 450-700 ms.
# 1. First boot of each count: a shell loop of curl setup+deploy (as the original
#    NixOS module did; it confirms nothing), sideloadd without load confirmation
#    (SIDELOADD_BENCH_SKIP_LOAD_CONFIRMATION, benchmarks only), and sideloadd
#    confirming every load. Goal: confirmed <= 1.5x unconfirmed.
# 2. The no-change second run: deploys (goal 0) and wall time (goal < 100 ms after
#    the server is ready; the server is already up here, so it is the whole run).
# 3. Peak RSS of sideloadd pushing one plugin.zip of BIG_ZIP_MB MB (goal < 20 MB).
#
# FAKE_SLOW_MS=N delays every HTTP answer of the fake by N ms, for a server whose
# setup and deploy take as long as the real one's (setup 7-32 ms, deploy 36-136 ms).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

counts=${1:-15 50}
big_mb=${2:-50}
plugins=0
for c in $counts; do ((c > plugins)) && plugins=$c; done
token=bench-token

cargo build --release --quiet -p sideloadd -p fake-scrypted
bin=target/release
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a fresh fake server with an empty volume; sets $port and $server_pid.
start_server() {
  stop_server
  rm -rf "$work/volume" && mkdir -p "$work/volume"
  port=$(free_port)
  "$bin/fake-scrypted" serve --port "$port" --token "$token" --volume "$work/volume" --slow-ms "${FAKE_SLOW_MS:-0}" &
  server_pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/login" && return 0
    sleep 0.05
  done
  echo "fake server did not start" >&2
  exit 1
}
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}

# Number of requests on a route.
count_route() {
  curl -s "http://127.0.0.1:$port/__fake/requests" | python3 -c "
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r['route'] == '$1'))"
}

write_config() { # $1 = config file, remaining: plugin dirs
  local cfg=$1
  shift
  python3 - "$cfg" "$port" "$work" "$@" <<'PY'
import json, sys, os
cfg, port, work, dirs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
plugins = [{"name": json.load(open(os.path.join(d, "package.json")))["name"], "path": d} for d in dirs]
json.dump({"server": f"http://127.0.0.1:{port}", "tokenFile": f"{work}/token",
           "stateDir": f"{work}/state", "volume": f"{work}/volume",
           "readyTimeoutSecs": 30, "plugins": plugins}, open(cfg, "w"))
PY
}

printf '%s\n' "$token" >"$work/token"
# Readable by its owner only, as the module's credential is (sideloadd warns otherwise).
chmod 600 "$work/token"
dirs=()
for i in $(seq 1 "$plugins"); do
  d="$work/plugins/p$i"
  "$bin/fake-scrypted" make-plugin "$d" "@scrypted/bench-$i" --version "1.0.$i" --padding-bytes $((200 * 1024))
  dirs+=("$d")
done

echo "== first boot, ~200 kB zips, fake server on loopback, release build"

# One sideloadd run against a fresh server (extra env first); sets $wall (ms).
# Not in a subshell: the server started here must outlive the call.
sideload_first_boot() { # $1 = config, rest: env assignments; plugins: "${sel[@]}"
  local cfg=$1
  shift
  start_server
  rm -rf "$work/state"
  write_config "$cfg" "${sel[@]}" # the new server's port
  local t0
  t0=$(now_ms)
  env "$@" RUST_LOG=warn "$bin/sideloadd" run --config "$cfg"
  wall=$(($(now_ms) - t0))
}

for n in $counts; do
  sel=("${dirs[@]:0:n}")
  names=()
  for d in "${sel[@]}"; do
    names+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$d/package.json")")
  done
  start_server
  t0=$(now_ms)
  for i in "${!sel[@]}"; do
    d=${sel[$i]} name=${names[$i]}
    curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data-binary "@$d/package.json" "http://127.0.0.1:$port/web/component/script/setup?npmPackage=$name" >/dev/null
    curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/zip' \
      --data-binary "@$d/plugin.zip" "http://127.0.0.1:$port/web/component/script/deploy?npmPackage=$name" >/dev/null
  done
  curl_wall=$(($(now_ms) - t0))
  sideload_first_boot "$work/config-$n.json" SIDELOADD_BENCH_SKIP_LOAD_CONFIRMATION=1
  plain=$wall
  sideload_first_boot "$work/config-$n.json"
  confirmed=$wall
  deploys=$(count_route deploy)
  python3 - "$n" "$curl_wall" "$plain" "$confirmed" "$deploys" <<'PY'
import sys
n, cw, pw, sw, d = map(int, sys.argv[1:])
print(f"{n:3d} plugins: curl loop {cw:6d} ms | sideloadd unconfirmed {pw:6d} ms | "
      f"load-confirmed {sw:6d} ms ({d} deploys) = {sw / pw:4.2f}x unconfirmed (goal <= 1.5x)")
PY
done
# The last count's server and state stay for the no-change run.
cp "$work/config-$n.json" "$work/config.json"

# --- no-change second run ---------------------------------------------------------
before=$(count_route deploy)
t0=$(now_ms)
RUST_LOG=warn "$bin/sideloadd" run --config "$work/config.json"
second_wall=$(($(now_ms) - t0))
after=$(count_route deploy)
echo "no-change run: $((after - before)) deploys, ${second_wall} ms wall (server already ready; goal: 0 deploys, < 100 ms)"

# --- peak RSS with a big zip ---------------------------------------------------------
big="$work/plugins/big"
"$bin/fake-scrypted" make-plugin "$big" "@scrypted/bench-big" --padding-bytes $((big_mb * 1024 * 1024))
start_server
rm -rf "$work/state"
write_config "$work/config-big.json" "$big"
/usr/bin/time -v "$bin/sideloadd" run --config "$work/config-big.json" 2>"$work/time.txt" || {
  cat "$work/time.txt" >&2
  exit 1
}
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
zip_bytes=$(stat -c %s "$big/plugin.zip")
echo "big zip: $((zip_bytes / 1024 / 1024)) MB plugin.zip, $(count_route deploy) deploy, sideloadd peak RSS $((rss_kb / 1024)) MB (${rss_kb} kB; goal < 20 MB)"
