#!/usr/bin/env bash
# 1. Always: every generated nix/plugins/<name>/package.nix evaluates through the
#    real nix/mk-scrypted-plugin.nix (over the stand-ins of build-plugins.sh) to a
#    derivation scrypted-plugin-<name>-<version> that fetches
#    <registry>/@scrypted/<name>/-/<name>-<version>.tgz by its pinned sha512, with
#    pluginName @scrypted/<name>. Instantiated, not built.
# 2. With NIXPKGS_LIB=/path (a nixpkgs or nixpkgs.lib tree): nix/plugins/default.nix
#    and the flake's outputs evaluated with that lib and a stand-in package set
#    (tests/nix/lib/flake-eval.nix), with and without a scrypted in nixpkgs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "--- every generated package.nix"
nix-instantiate --eval --strict --json -E '
  let
    h = import ./tests/nix/lib/plugins.nix { };
  in
  map (name:
    let
      pin = h.pins.${name};
      drv = h.packages.${name};
    in {
      inherit name;
      inherit (pin) pname version hash;
      description = pin.meta.description or null;
      drvName = drv.name;
      drvPath = drv.drvPath;
      inherit (drv) pluginName;
      url = drv.src.url;
      outputHash = drv.src.outputHash;
    }) h.generatedNames
' >"$tmp/plugins.json"

jq -r '
  def fail($msg): "FAIL: \(.name): \($msg)";
  if length == 0 then "FAIL: no generated plugins under nix/plugins" else
  ((.[0].url | capture("^(?<base>https?://.+)/@scrypted/") | .base)? // "") as $base
  | if $base == "" then "FAIL: \(.[0].url) is not a registry tarball URL" else empty end,
  (.[] |
    if .pname != .name then fail("pname \(.pname) differs from its directory")
    elif (.version | test("^[0-9]+\\.[0-9]+\\.[0-9]+([-+].*)?$") | not) then fail("version \(.version) is not semver")
    elif (.hash | test("^sha512-[A-Za-z0-9+/]{86}==$") | not) then fail("hash \(.hash) is not a sha512 SRI hash")
    elif (.description | type) != "string" or .description == "" then fail("no meta.description")
    elif .drvName != "scrypted-plugin-\(.name)-\(.version)" then fail("derivation named \(.drvName)")
    elif .pluginName != "@scrypted/\(.name)" then fail("pluginName \(.pluginName)")
    elif .url != "\($base)/@scrypted/\(.name)/-/\(.name)-\(.version).tgz" then fail("fetches \(.url)")
    elif .outputHash != .hash then fail("fetch pinned to \(.outputHash), package.nix says \(.hash)")
    else "ok: \(.name) \(.version)" end)
  end
' "$tmp/plugins.json" | tee "$tmp/plugins.out"
if grep -q '^FAIL' "$tmp/plugins.out"; then
  exit 1
fi
echo "$(jq length "$tmp/plugins.json") generated plugins evaluate, from $(jq -r '.[0].url | sub("/@scrypted/.*"; "")' "$tmp/plugins.json")"

echo "--- the plugin set and the flake outputs, with nixpkgs' lib"
if [ -z "${NIXPKGS_LIB:-}" ]; then
  echo "skipped: NIXPKGS_LIB is not set (point it at a nixpkgs or nixpkgs.lib checkout to run this part)"
  exit 0
fi
if [ -e "$NIXPKGS_LIB/lib/default.nix" ]; then
  libdir=$(cd "$NIXPKGS_LIB/lib" && pwd)
elif [ -e "$NIXPKGS_LIB/default.nix" ] && [ -e "$NIXPKGS_LIB/fixed-points.nix" ]; then
  libdir=$(cd "$NIXPKGS_LIB" && pwd)
else
  echo "FAIL: NIXPKGS_LIB=$NIXPKGS_LIB holds no nixpkgs lib (lib/default.nix)" >&2
  exit 1
fi

nix-instantiate --eval --strict --json \
  --arg lib "import $libdir" tests/nix/lib/flake-eval.nix |
  jq -r '.[] | if .ok then "ok: \(.name)" else "FAIL: \(.name): \(.detail)" end' |
  tee "$tmp/flake.out"
if grep -q '^FAIL' "$tmp/flake.out"; then
  exit 1
fi
echo "eval: all checks passed"
