#!/usr/bin/env bash
# Benchmark for sideloadd on the fake Scrypted server (prints figures; not a test).
#
#   tests/bench/sideloadd.sh [PLUGINS] [BIG_ZIP_MB]
#
# 1. First run with PLUGINS plugins: sideloadd's own time per plugin beyond the
#    server's (wall time minus the time the server spent on each request), next to
#    a shell loop of curl setup+deploy as the original NixOS module did.
# 2. The no-change second run: deploys (goal 0) and wall time (goal < 100 ms after
#    the server is ready; the server is already up here, so it is the whole run).
# 3. Peak RSS of sideloadd pushing one plugin.zip of BIG_ZIP_MB MB (goal < 20 MB).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

plugins=${1:-15}
big_mb=${2:-50}
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
  "$bin/fake-scrypted" serve --port "$port" --token "$token" --volume "$work/volume" &
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

# Sum of the server's own time (ms) over sideload requests, and their count by route.
server_ms() {
  curl -s "http://127.0.0.1:$port/__fake/requests" | python3 -c '
import json, sys
rs = json.load(sys.stdin)
print("%.1f" % (sum(r["server_micros"] for r in rs) / 1000.0))'
}
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
dirs=()
for i in $(seq 1 "$plugins"); do
  d="$work/plugins/p$i"
  "$bin/fake-scrypted" make-plugin "$d" "@scrypted/bench-$i" --version "1.0.$i" --padding-bytes $((200 * 1024))
  dirs+=("$d")
done

echo "== $plugins plugins (~200 kB zips), fake server on loopback, release build"

# --- curl loop, as the original module did -------------------------------------
names=()
for d in "${dirs[@]}"; do
  names+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$d/package.json")")
done
start_server
t0=$(now_ms)
for i in "${!dirs[@]}"; do
  d=${dirs[$i]} name=${names[$i]}
  curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data-binary "@$d/package.json" "http://127.0.0.1:$port/web/component/script/setup?npmPackage=$name" >/dev/null
  curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/zip' \
    --data-binary "@$d/plugin.zip" "http://127.0.0.1:$port/web/component/script/deploy?npmPackage=$name" >/dev/null
done
curl_wall=$(($(now_ms) - t0))
curl_server=$(server_ms)
curl_deploys=$(count_route deploy)

# --- sideloadd first run --------------------------------------------------------
start_server
rm -rf "$work/state"
write_config "$work/config.json" "${dirs[@]}"
t0=$(now_ms)
RUST_LOG=warn "$bin/sideloadd" run --config "$work/config.json"
sl_wall=$(($(now_ms) - t0))
sl_server=$(server_ms)
sl_deploys=$(count_route deploy)

python3 - "$plugins" "$curl_wall" "$curl_server" "$curl_deploys" "$sl_wall" "$sl_server" "$sl_deploys" <<'PY'
import sys
n = int(sys.argv[1]); cw, cs, cd, sw, ss, sd = map(float, sys.argv[2:])
print(f"curl loop : {cw:7.1f} ms wall, {cs:7.1f} ms in server, {int(cd)} deploys -> {(cw-cs)/n:6.2f} ms/plugin of client overhead")
print(f"sideloadd : {sw:7.1f} ms wall, {ss:7.1f} ms in server, {int(sd)} deploys -> {(sw-ss)/n:6.2f} ms/plugin of client overhead")
print("            (sideloadd's includes validating every zip (CRC of each entry), md5, the state file and confirmation)")
PY

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
