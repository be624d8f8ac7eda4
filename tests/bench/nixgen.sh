#!/usr/bin/env bash
# Benchmark (prints figures; not a pass/fail test): the original serial
# updater's approach versus `nixgen update`, against the registry snapshot
# served on loopback with 50 ms added per request.
#
# usage: tests/bench/nixgen.sh [SNAPSHOT_DIR]
#   SNAPSHOT_DIR  default: crates/nixgen/tests/fixtures/registry
#   NIXGEN_BIN    use this binary instead of building the release one
#   DELAY_MS      per-request delay (default 50)
#   FULL=0        leave out the full run (it downloads tarballs from
#                 registry.npmjs.org and runs npm)
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
trap cleanup EXIT

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$work"
}
# start_in_background PORT_FILE CMD...: starts a stand-in and waits for its port.
start_in_background() {
  local port_file=$1
  shift
  "$@" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $port_file ]] && break; sleep 0.05; done
}
start_in_background "$work/port" python3 tests/bench/delay_server.py "$snapshot" "$delay_ms" "$work/port"
registry="http://127.0.0.1:$(cat "$work/port")"
# The same snapshot with no delay: what is left is nixgen's own time (process
# start, reading the tree, rendering, writing) and the stand-in's.
start_in_background "$work/port0" python3 tests/bench/delay_server.py "$snapshot" 0 "$work/port0"
registry0="http://127.0.0.1:$(cat "$work/port0")"
# A DNS stand-in that drops every query arriving within 20 ms of another.
start_in_background "$work/dns_port" python3 tests/bench/dns_standin.py "$work/dns_port" "$work/dns.log"

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
for jobs in 16 64 128; do
  mkdir -p "$work/root$jobs/nix/plugins"
  t0=$(now)
  run_metadata "$work/root$jobs" "$work/first$jobs.json" --jobs "$jobs"
  t1=$(now)
  took[$jobs]=$(elapsed "$t0" "$t1")
done

# Where the time of the default run goes: the same run with nothing written
# (--dry-run), and both again with no delay (nixgen's own time).
timed() { # LABEL REGISTRY ARGS...: median of 5 runs into an empty tree
  local label=$1 reg=$2 i t0 t1
  shift 2
  for i in 1 2 3 4 5; do
    rm -rf "$work/scratch" && mkdir -p "$work/scratch/nix/plugins"
    t0=$(now)
    "$NIXGEN_BIN" update --root "$work/scratch" --registry "$reg" --json --metadata-only "$@" >/dev/null 2>&1 || true
    t1=$(now)
    elapsed "$t0" "$t1"
    echo
  done | sort -n | sed -n 3p | while read -r t; do echo "$label $t s"; done
}
breakdown=$(
  timed "written,   ${delay_ms} ms/request:" "$registry"
  timed "dry run,   ${delay_ms} ms/request:" "$registry" --dry-run
  timed "written,    0 ms/request:" "$registry0"
  timed "dry run,    0 ms/request:" "$registry0" --dry-run
)

# Host name lookups: the registry by name through the DNS stand-in, which
# drops answers to a burst of lookups. nixgen asks once per host, so the
# time must not grow with --jobs, nor the number of queries.
dns_registry="http://registry.bench.test:$(cat "$work/port")"
dns_rows=()
for jobs in 8 16 32 64; do
  : >"$work/dns.log"
  rm -rf "$work/dns_root" && mkdir -p "$work/dns_root/nix/plugins"
  t0=$(now)
  NIXGEN_DNS_SERVER="127.0.0.1:$(cat "$work/dns_port")" "$NIXGEN_BIN" update --root "$work/dns_root" \
    --registry "$dns_registry" --json --metadata-only --jobs "$jobs" >"$work/dns.json" 2>/dev/null || true
  t1=$(now)
  dns_rows+=("$(printf -- '--jobs %-3s %s s, %s added; %s DNS queries (%s dropped)' "$jobs" "$(elapsed "$t0" "$t1")" \
    "$(jq '.added | length' "$work/dns.json")" "$(wc -l <"$work/dns.log")" "$(grep -c dropped "$work/dns.log" || true)")")
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
if [[ ${FULL:-1} != 0 ]]; then
run_nixgen "$work/root16" "$work/full1.json"
find "$work/root16" -type f -printf '%p %T@\n' | sort >"$work/before"
t0=$(now)
run_nixgen "$work/root16" "$work/full2.json"
t1=$(now)
full=$(elapsed "$t0" "$t1")
find "$work/root16" -type f -printf '%p %T@\n' | sort >"$work/after"
full_touched=$(comm -3 "$work/before" "$work/after" | wc -l)
fi

# (5) The trust checks (issue 15), on the metadata path. "With": the default
# 3-day cooldown, and npm's registry keys pinned for the loopback registry
# (the snapshot carries no signatures, so every pin comes out unsigned).
# "Without": --min-release-age 0 and no keys. Each run starts from a copy of
# the steady tree. The changed run serves a copy of the snapshot in which 10
# plugins have a new version, published 4 days ago by the package documents
# written for them (the snapshot has none).
changed=$work/changed
cp -r "$snapshot/." "$changed/"
mapfile -t bumped < <(find "$work/root16/nix/plugins" -name package.nix -exec grep -l '^  version = "[0-9]*\.[0-9]*\.[0-9]*";$' {} + |
  xargs -n1 dirname | xargs -n1 basename | grep -v -- -- | sort | head -10)
for name in "${bumped[@]}"; do
  doc=$changed/@scrypted/$name/latest
  old=$(jq -r .version "$doc")
  new=$(awk -F. -v OFS=. '{ $3 += 1; print }' <<<"$old")
  integrity="sha512-$(printf '%s' "$name-$new" | openssl dgst -sha512 -binary | base64 -w0)"
  jq --arg v "$new" --arg i "$integrity" '.version = $v | .dist.integrity = $i' "$doc" >"$doc.new"
  mv "$doc.new" "$doc"
  jq -n --arg n "@scrypted/$name" --arg old "$old" --arg new "$new" --slurpfile v "$doc" \
    --arg t_old "$(date -u -d '30 days ago' +%FT%T.000Z)" --arg t_new "$(date -u -d '4 days ago' +%FT%T.000Z)" \
    '{name: $n, "dist-tags": {latest: $new}, time: {($old): $t_old, ($new): $t_new},
      versions: {($new): $v[0]}}' >"$changed/@scrypted/$name/.document"
done
start_in_background "$work/port2" python3 tests/bench/delay_server.py "$changed" "$delay_ms" "$work/port2"
changed_registry="http://127.0.0.1:$(cat "$work/port2")"
trusting() { # LABEL REGISTRY CHECKS(yes/no)
  local root=$work/trust-$1
  rm -rf "$root" && cp -r "$work/root16" "$root"
  local args=(--metadata-only --json --tarball-registry https://registry.npmjs.org --min-release-age 0)
  if [[ $3 == yes ]]; then
    args=("${args[@]:0:4}")
    # The keys are pinned for whichever loopback port the server has; an
    # untimed run against the unchanged snapshot records "unsigned" in every
    # package.nix first, so the timed run changes only what the registry did.
    jq --arg a "$registry" --arg b "$changed_registry" \
      '.["https://registry.npmjs.org"] as $k | {($a): $k, ($b): $k}' nix/plugins/registry-keys.json \
      >"$root/nix/plugins/registry-keys.json"
    "$NIXGEN_BIN" update --root "$root" --registry "$registry" "${args[@]}" >/dev/null 2>&1 || true
  fi
  t0=$(now)
  "$NIXGEN_BIN" update --root "$root" --registry "$2" "${args[@]}" \
    >"$work/trust-$1.json" 2>/dev/null || true
  t1=$(now)
  elapsed "$t0" "$t1"
}
declare -A trust
trust[same-without]=$(trusting same-without "$registry" no)
trust[same-with]=$(trusting same-with "$registry" yes)
trust[changed-without]=$(trusting changed-without "$changed_registry" no)
trust[changed-with]=$(trusting changed-with "$changed_registry" yes)

ratio() { awk -v a="$serial" -v b="$1" 'BEGIN { printf "%.1fx", a / b }'; }
echo "plugins in search:          $(wc -l <"$work/serial.txt") (each request delayed by ${delay_ms} ms)"
echo "serial curl | jq:           ${serial} s"
for jobs in 16 64 128; do
  f=$work/first$jobs.json
  label=$jobs
  [[ $jobs == 64 ]] && label="64 (default)"
  printf 'nixgen update --jobs %-13s %s s (%s added, %s failed), speed-up %s\n' "$label" "${took[$jobs]}" \
    "$(jq '.added | length' "$f")" "$(jq '.failed | length' "$f")" "$(ratio "${took[$jobs]}")"
done
echo "second run, nothing changed: ${steady} s, speed-up $(ratio "$steady"); $(jq '.files_changed' "$work/second.json") files changed reported, ${touched} rewritten on disk"
[[ ${FULL:-1} == 0 ]] || echo "full run, nothing changed:   ${full} s (npm resolves llm's tree again); $(jq '.files_changed' "$work/full2.json") files changed reported, ${full_touched} rewritten on disk"
echo "where the time goes (into an empty tree, --jobs 64, median of 5; one request takes ${delay_ms} ms, the search and then the documents are two round trips, and 69 documents at 64 in flight are a third):"
sed 's/^/  /' <<<"$breakdown"
echo "  process start and exit: $(t0=$(now); "$NIXGEN_BIN" --version >/dev/null; t1=$(now); elapsed "$t0" "$t1") s"
echo "DNS through a stand-in that drops every query arriving within 20 ms of another (registry by host name):"
printf '  %s\n' "${dns_rows[@]}"
trust_line() { # LABEL
  local f=$work/trust-$1.json
  printf '%-28s %s s (%s updated, %s files changed, %s held back, %s signatures verified, %s unsigned, %s failed)\n' \
    "$1:" "${trust[$1]}" "$(jq '.updated | length' "$f")" "$(jq '.files_changed' "$f")" "$(jq '.cooldown.held_back | length' "$f")" \
    "$(jq '.signatures.verified' "$f")" "$(jq '.signatures.unsigned | length' "$f")" "$(jq '.failed | length' "$f")"
}
echo "trust checks (--metadata-only; with = 3-day cooldown and npm's keys pinned, without = --min-release-age 0, no keys):"
for label in same-without same-with changed-without changed-with; do trust_line "$label"; done
echo "committed pins with a verified registry signature: $(grep -l '^# Registry signature: verified' nix/plugins/*/package.nix | wc -l) of $(grep -l '@generated by nixgen' nix/plugins/*/package.nix | wc -l)"
