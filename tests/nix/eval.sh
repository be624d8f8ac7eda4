#!/usr/bin/env bash
# 1. Always: every generated nix/plugins/<name>/package.nix evaluates through the
#    real nix/mk-scrypted-plugin.nix (over the stand-ins of build-plugins.sh) to a
#    derivation scrypted-plugin-<name>-<version> that fetches
#    <registry>/@scrypted/<name>/-/<name>-<version>.tgz by its pinned sha512, with
#    pluginName @scrypted/<name>; a community plugin's directory <scope>--<name>
#    (`_--<name>` unscoped) likewise gives @<scope>/<name> and
#    scrypted-plugin-<scope>-<name>-<version>. Instantiated, not built.
# 2. With NIXPKGS_LIB=/path (a nixpkgs or nixpkgs.lib tree): nix/plugins/default.nix
#    and the flake's outputs evaluated with that lib and a stand-in package set
#    (tests/nix/lib/flake-eval.nix), with and without a scrypted in nixpkgs; then
#    the flake through nix's own flake evaluator with a stand-in nixpkgs input
#    (tests/nix/lib/fake-nixpkgs): the lock is read, scrypted.plugins lists every
#    plugin, and `nix build .#scrypted.plugins.snapshot` builds the very
#    derivation build-plugins.sh builds.
# The single-quoted arguments are Nix or jq code, expanded by them, not by bash.
# shellcheck disable=SC2016
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
      scope = pin.scope or "scrypted";
      description = pin.meta.description or null;
      drvName = drv.name;
      drvPath = drv.drvPath;
      inherit (drv) pluginName;
      url = drv.src.url;
      outputHash = drv.src.outputHash;
    }) h.generatedNames
' >"$tmp/plugins.json" || {
  echo "FAIL: the generated package.nix files do not evaluate" >&2
  exit 1
}

jq -r '
  def fail($msg): "FAIL: \(.name): \($msg)";
  # README.md, "Plugin names": <name> is @scrypted/<name>, <scope>--<name> is
  # @<scope>/<name>, _--<name> is the unscoped <name>.
  def parts: (index("--")) as $i
    | if $i == null then {scope: "scrypted", bare: .}
      elif .[:$i] == "_" then {scope: null, bare: .[$i + 2:]}
      else {scope: .[:$i], bare: .[$i + 2:]} end;
  def npm: if .scope == null then .bare else "@\(.scope)/\(.bare)" end;
  def prefix: if .scope == null or .scope == "scrypted" then "" else "\(.scope)-" end;
  if length == 0 then "FAIL: no generated plugins under nix/plugins" else
  (map(select(.name | test("--") | not))[0].url as $u
    | ($u | capture("^(?<base>https?://.+)/@scrypted/") | .base)? // "") as $base
  | if $base == "" then "FAIL: no official plugin fetches a registry tarball URL" else empty end,
  (.[] | (.name | parts) as $p |
    if .pname != $p.bare or .scope != $p.scope then fail("pname \(.pname), scope \(.scope) differ from its directory")
    elif (.version | test("^[0-9]+\\.[0-9]+\\.[0-9]+([-+].*)?$") | not) then fail("version \(.version) is not semver")
    elif (.hash | test("^sha512-[A-Za-z0-9+/]{86}==$") | not) then fail("hash \(.hash) is not a sha512 SRI hash")
    elif (.description | type) != "string" or .description == "" then fail("no meta.description")
    elif .drvName != "scrypted-plugin-\($p | prefix)\($p.bare)-\(.version)" then fail("derivation named \(.drvName)")
    elif .pluginName != ($p | npm) then fail("pluginName \(.pluginName)")
    elif .url != "\($base)/\($p | npm)/-/\($p.bare)-\(.version).tgz" then fail("fetches \(.url)")
    elif .outputHash != .hash then fail("fetch pinned to \(.outputHash), package.nix says \(.hash)")
    else "ok: \(.name) \(.version)" end)
  end
' "$tmp/plugins.json" | tee "$tmp/plugins.out"
if grep -q '^FAIL' "$tmp/plugins.out"; then
  exit 1
fi
echo "$(jq length "$tmp/plugins.json") generated plugins evaluate, from $(jq -r '.[0].url | sub("/@[^/]+/.*"; "")' "$tmp/plugins.json")"

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

# --read-write-mode: the package checks read the filtered sources they add to the store.
if ! nix-instantiate --eval --strict --json --read-write-mode \
  --arg lib "import $libdir" tests/nix/lib/flake-eval.nix >"$tmp/flake.json"; then
  echo "FAIL: tests/nix/lib/flake-eval.nix does not evaluate" >&2
  exit 1
fi
jq -r '.[] | if .ok then "ok: \(.name)" else "FAIL: \(.name): \(.detail)" end' "$tmp/flake.json" |
  tee "$tmp/flake.out"
if grep -q '^FAIL' "$tmp/flake.out"; then
  exit 1
fi

echo "--- the flake through nix's flake evaluator, nixpkgs stood in for"
fake=$tmp/fake-nixpkgs
mkdir "$fake"
cp tests/nix/lib/fake-nixpkgs/flake.nix tests/nix/lib/stand-ins.nix tests/nix/lib/strict.nix tests/nix/lib/lib-compat.nix \
  tests/nix/lib/generic-builder.sh tests/nix/nixpkgs.json "$fake/"
cp -r "$libdir" "$fake/lib"
# A path: flake is copied whole into the store; take only what git would commit,
# not target/.
repo=$tmp/repo
mkdir "$repo"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    xargs -0 cp --parents -t "$repo"
else
  tar -c --exclude=./target --exclude=./.git . | tar -x -C "$repo"
fi
flake=path:$repo
opts=(--no-write-lock-file --override-input nixpkgs "path:$fake")

nix eval "${opts[@]}" --json "$flake#scrypted.plugins" --apply builtins.attrNames \
  >"$tmp/names.json" 2>"$tmp/eval.log" || {
  cat "$tmp/eval.log" >&2
  echo "FAIL: nix eval .#scrypted.plugins" >&2
  exit 1
}
# Overriding the input makes nix name what flake.lock had locked.
grep -q "github:NixOS/nixpkgs/d1c15b7d5806069da59e819999d70e1cec0760bf" "$tmp/eval.log" || {
  cat "$tmp/eval.log" >&2
  echo "FAIL: nix did not read the nixpkgs pin from flake.lock" >&2
  exit 1
}
echo "ok: nix reads flake.lock's nixpkgs pin"
# Besides the plugins, the set carries the builder and nixgen's removal record.
expected=$({
  for d in nix/plugins/*/package.nix; do basename "$(dirname "$d")"; done
  printf '%s\n' mkScryptedPlugin removedPlugins
} | jq -R . | jq -cs 'sort')
actual=$(jq -c 'sort' "$tmp/names.json")
[ "$expected" = "$actual" ] || {
  echo "FAIL: .#scrypted.plugins has $actual, nix/plugins has $expected" >&2
  exit 1
}
echo "ok: .#scrypted.plugins lists the plugin directories, mkScryptedPlugin and removedPlugins"

server=$(nix eval "${opts[@]}" --json "$flake#scrypted" --apply 's: { inherit (s) name; inherit (s.meta) mainProgram; }' 2>"$tmp/eval.log") || {
  cat "$tmp/eval.log" >&2
  echo "FAIL: nix eval .#scrypted" >&2
  exit 1
}
expected_server=$(jq -c '{name: "scrypted-\(.version)", mainProgram: "scrypted-serve"}' nix/packages/scrypted/pin.json)
[ "$(jq -cS . <<<"$server")" = "$(jq -cS . <<<"$expected_server")" ] || {
  echo "FAIL: .#scrypted is $server, expected $expected_server" >&2
  exit 1
}
echo "ok: .#scrypted is the server: $server"

flake_drv=$(nix eval "${opts[@]}" --raw "$flake#scrypted.plugins.snapshot.drvPath" 2>/dev/null)
harness_drv=$(nix-instantiate tests/nix/lib/plugins.nix -A packages.snapshot 2>/dev/null)
[ "$flake_drv" = "$harness_drv" ] || {
  echo "FAIL: the flake's snapshot is $flake_drv, the harness's $harness_drv" >&2
  exit 1
}
out=$(nix build "${opts[@]}" --no-link --json "$flake#scrypted.plugins.snapshot" 2>"$tmp/build.log" |
  jq -r '.[0].outputs.out') || {
  cat "$tmp/build.log" >&2
  echo "FAIL: nix build .#scrypted.plugins.snapshot" >&2
  exit 1
}
if [ ! -f "$out/plugin.zip" ] || [ ! -f "$out/package.json" ]; then
  echo "FAIL: nix build .#scrypted.plugins.snapshot gave $out without plugin.zip and package.json" >&2
  exit 1
fi
echo "ok: nix build .#scrypted.plugins.snapshot -> $out (the derivation build-plugins.sh builds)"

echo "--- every output nix flake check evaluates, over the strict stand-ins"
# What `nix flake check` evaluates first, before it builds anything: a stand-in
# refusing an argument here is a flake check that fails at the lock. Only the
# real NixOS evaluations (checks.*.module-eval) need nixpkgs' NixOS modules:
# module-eval.sh covers the module, and nix flake check the rest.
flake_eval() { # ATTR APPLY: one output, through the flake evaluator
  nix eval "${opts[@]}" --json "$flake#$1" --apply "$2" 2>"$tmp/eval.log" || {
    cat "$tmp/eval.log" >&2
    echo "FAIL: $1 does not evaluate over the stand-ins" >&2
    exit 1
  }
}
{
  echo '{'
  echo '"systems":'
  flake_eval packages 'ps: map (s: builtins.attrNames ps.${s}) [ "x86_64-linux" "aarch64-linux" ]'
  echo ', "packages":'
  flake_eval packages.x86_64-linux 'builtins.mapAttrs (_: p: p.name)'
  echo ', "app":'
  flake_eval apps.x86_64-linux.update 'a: { inherit (a) type; program = builtins.unsafeDiscardStringContext a.program; }'
  echo ', "devShell":'
  flake_eval devShells.x86_64-linux.default 's: s.name'
  echo ', "formatter":'
  flake_eval formatter.x86_64-linux 'f: f.name'
  echo ', "checks":'
  flake_eval checks.x86_64-linux 'builtins.mapAttrs (n: c: if n == "module-eval" then "not evaluated here" else c.name)'
  echo ', "module":'
  flake_eval nixosModules.default 'm: builtins.length m.imports'
  echo '}'
} >"$tmp/outputs.json"
jq -e '
  .systems == [["default", "nixgen", "sideloadd"], ["default", "nixgen", "sideloadd"]]
  and (.app.type == "app") and (.app.program | endswith("/bin/scrypted-nix-update"))
  and (.checks | has("vm-sideload") and has("formatting") and has("scrypted") and has("plugin-snapshot"))
' "$tmp/outputs.json" >/dev/null || {
  jq . "$tmp/outputs.json" >&2
  echo "FAIL: the flake's outputs are not what they should be" >&2
  exit 1
}
echo "ok: packages, apps, devShells, formatter, checks ($(jq -r '.checks | keys | join(", ")' "$tmp/outputs.json")) evaluate"

echo "eval: all checks passed"
