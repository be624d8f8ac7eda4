#!/usr/bin/env bash
# Benchmark (prints figures; not a pass/fail test): the original serial
# updater's approach versus `nixgen update`, against the registry snapshot
# served on loopback with 50 ms added per request.
#
# usage: tests/bench/nixgen.sh [SNAPSHOT_DIR]
#   SNAPSHOT_DIR  default: crates/nixgen/tests/fixtures/registry
#   NIXGEN_BIN    use this binary instead of building the release one
#   DELAY_MS      per-request delay (default 50)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

snapshot=${1:-crates/nixgen/tests/fixtures/registry}
delay_ms=${DELAY_MS:-50}
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

if [[ -z ${NIXGEN_BIN:-} ]]; then
  cargo build --release --locked -p nixgen >&2
  NIXGEN_BIN=target/release/nixgen
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

python3 tests/bench/delay_server.py "$snapshot" "$delay_ms" "$work/port" &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.05; done
registry="http://127.0.0.1:$(cat "$work/port")"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# (1) The serial updater: one search, then one `curl .../latest | jq` per plugin.
t0=$(now)
: >"$work/serial.txt"
names=$(curl -fsS "$registry/-/v1/search?text=keywords:scrypted&size=250" |
  jq -r '.objects[].package.name | select(startswith("@scrypted/"))')
for name in $names; do
  curl -fsS "$registry/$name/latest" |
    jq -r '[.name, .version, (.scrypted.runtime // "node"), (.dist.integrity // "")] | @tsv' >>"$work/serial.txt"
done
t1=$(now)
serial=$(elapsed "$t0" "$t1")

# (2) nixgen into an empty tree, with the default --jobs 64 and with 16 in
# flight (at 50 ms a request, 16 in flight bounds the speed-up near 14x
# whatever the client does).
# The comparison times the metadata path, which is what the serial updater
# did: --metadata-only runs no npm and downloads no tarball. The full run
# (native dependency locks, zip scans over the network) is timed after it.
run_nixgen() { # ROOT OUT ARGS...
  local root=$1 out=$2
  shift 2
  "$NIXGEN_BIN" update --root "$root" --registry "$registry" \
    --tarball-registry https://registry.npmjs.org --json "$@" >"$out" 2>/dev/null || true
}
run_metadata() { # ROOT OUT ARGS...
  run_nixgen "$@" --metadata-only
}
declare -A took
for jobs in 16 64; do
  mkdir -p "$work/root$jobs/nix/plugins"
  t0=$(now)
  run_metadata "$work/root$jobs" "$work/first$jobs.json" --jobs "$jobs"
  t1=$(now)
  took[$jobs]=$(elapsed "$t0" "$t1")
done

# (3) Again with nothing changed (the usual run: a populated tree, so the
# known plugins are fetched while the search runs): no file may be rewritten.
find "$work/root16" -type f -printf '%p %T@\n' | sort >"$work/before"
t0=$(now)
run_metadata "$work/root16" "$work/second.json"
t1=$(now)
steady=$(elapsed "$t0" "$t1")
find "$work/root16" -type f -printf '%p %T@\n' | sort >"$work/after"
touched=$(comm -3 "$work/before" "$work/after" | wc -l)

# (4) The full run (npm for native dependencies, tarball downloads from
# registry.npmjs.org for the zip scan): once to scan, then again with
# nothing changed, which runs npm again (to notice a changed tree) but
# downloads nothing and rewrites no file.
run_nixgen "$work/root16" "$work/full1.json"
find "$work/root16" -type f -printf '%p %T@\n' | sort >"$work/before"
t0=$(now)
run_nixgen "$work/root16" "$work/full2.json"
t1=$(now)
full=$(elapsed "$t0" "$t1")
find "$work/root16" -type f -printf '%p %T@\n' | sort >"$work/after"
full_touched=$(comm -3 "$work/before" "$work/after" | wc -l)

ratio() { awk -v a="$serial" -v b="$1" 'BEGIN { printf "%.1fx", a / b }'; }
echo "plugins in search:          $(wc -l <"$work/serial.txt") (each request delayed by ${delay_ms} ms)"
echo "serial curl | jq:           ${serial} s"
for jobs in 16 64; do
  f=$work/first$jobs.json
  label=$jobs
  [[ $jobs == 64 ]] && label="64 (default)"
  printf 'nixgen update --jobs %-13s %s s (%s added, %s failed), speed-up %s\n' "$label" "${took[$jobs]}" \
    "$(jq '.added | length' "$f")" "$(jq '.failed | length' "$f")" "$(ratio "${took[$jobs]}")"
done
echo "second run, nothing changed: ${steady} s, speed-up $(ratio "$steady"); $(jq '.files_changed' "$work/second.json") files changed reported, ${touched} rewritten on disk"
echo "full run, nothing changed:   ${full} s (npm resolves llm's tree again); $(jq '.files_changed' "$work/full2.json") files changed reported, ${full_touched} rewritten on disk"
