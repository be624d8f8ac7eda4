#!/usr/bin/env bash
# The Scrypted server recipe (nix/packages/scrypted/package.nix) evaluated
# over recording stand-ins for buildNpmPackage and friends
# (tests/nix/lib/scrypted-package.nix): it builds the pinned commit's server/
# with its own lock, keeps install scripts off, compiles the native modules,
# wraps the server with nixpkgs' node, ffmpeg and Python, and refuses a
# `plugins` argument. With NIXPKGS_LIB also with nixpkgs' lib; with
# SCRYPTED_SOURCE_GIT (a git directory of koush/scrypted) the source is put in
# the store the way the recipe's evaluation-time fetch would find it, and the
# lock the recipe reads is checked. The build itself needs nixpkgs
# (`nix build .#scrypted` on a Nix machine).
# The single-quoted arguments are jq code, expanded by jq, not by bash.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

libs=(null)
if [[ -n ${NIXPKGS_LIB:-} ]]; then
  lib_dir=$NIXPKGS_LIB
  [[ -f $lib_dir/lib/default.nix ]] && lib_dir=$lib_dir/lib
  libs+=("import $(cd "$lib_dir" && pwd)")
else
  echo "note: NIXPKGS_LIB is not set; evaluating with the recipe's few lib functions stood in for"
fi

for lib in "${libs[@]}"; do
  echo "--- lib: ${lib}"
  nix-instantiate --eval --strict --json --arg lib "$lib" tests/nix/lib/scrypted-package.nix -A record >"$tmp/recipe.json"
  jq -r '
    def check($name; $ok): if $ok then "ok: \($name)" else "FAIL: \($name)" end;
    . as $r | .postInstall as $install |
    check("pname scrypted, version from pin.json"; .pname == "scrypted" and .version == .pin.version),
    check("built with buildNpmPackage"; .builtBy == "buildNpmPackage"),
    check("source: koush/scrypted at the pinned commit and hash";
      .src == {owner: "koush", repo: "scrypted", rev: .pin.rev, hash: .pin.hash}),
    check("pinned commit is a full commit id"; .pin.rev | test("^[0-9a-f]{40}$")),
    check("pinned hash is a sha256 SRI hash"; .pin.hash | test("^sha256-[A-Za-z0-9+/]{43}=$")),
    check("builds server/ of the source"; .sourceRoot == "source/server"),
    check("lock read through importNpmLock (no npmDepsHash)"; .npmConfigHook == "import-npm-lock-config-hook"),
    check("install scripts stay off (they download ffmpeg and Python)"; .npmRebuildFlags == ["--ignore-scripts"]),
    check("runs on nodejs 22, exported as passthru.nodejs"; .nodejs == "node" and .passthru.nodejs == "node"),
    check("classic-level compiled from source"; .preBuild | test("rm -rf node_modules/classic-level/prebuilds\n *build_addon node_modules/classic-level\n")),
    check("native modules compiled against the server node'"'"'s headers, not nixpkgs'"'"' default node"; .preBuild | test("export npm_config_nodedir=/stand-in/source-of/node\n")),
    check("only the compiled modules kept of the node-gyp build trees, stripped (buildNpmPackage does not strip)";
      (.preBuild | test("mv \"\\$1\"/build/Release/\\*.node \"\\$keep\"\n *rm -rf \"\\$1/build\"\n *mkdir -p \"\\$1/build/Release\"\n *mv \"\\$keep\"/\\*.node \"\\$1/build/Release/\"\n *\\$STRIP -S \"\\$1\"/build/Release/\\*.node"))
      and (.preBuild | test("build_addon \"\\$pty\"\n"))),
    check("the headers may not be referenced by the output"; .disallowedReferences == ["/stand-in/source-of/node"]),
    check("each compiled module is loaded with the server'"'"'s node in installCheck";
      .doInstallCheck and (.installCheckPhase | test("node_modules/classic-level node_modules/@scrypted/node-pty")) and (.installCheckPhase | test("/stand-in/node/bin/node -e '"'"'process.dlopen"))),
    check("passthru.minCoreVersion is the pin'"'"'s"; .passthru.minCoreVersion == .pin.minCoreVersion and (.pin.minCoreVersion | test("^[0-9]+\\.[0-9]+\\.[0-9]+$"))),
    check("node-pty compiled against a pinned node-addon-api";
      .preBuild | test("/fetchurl/node-addon-api-[0-9.]+\\.tgz#sha512-[A-Za-z0-9+/]{86}== ")),
    check("sharp: musl builds dropped, prebuilt ELF files patched";
      ($install | test("rm -rf [^\n]*/node_modules/@img/\\*linuxmusl\\*")) and (.postFixup | test("autoPatchelf [^\n]*/node_modules/@img")) and .dontAutoPatchelf),
    check("wrapper: node --expose-gc on dist/scrypted-main.js";
      $install | test("makeWrapper /stand-in/node/bin/node \"\\$out/bin/scrypted-serve\"[^\n]*\n *--add-flags \"--expose-gc [^\"]*/dist/scrypted-main.js\"")),
    check("wrapper: nixpkgs ffmpeg and Python, overridable";
      ($install | test("--set-default SCRYPTED_FFMPEG_PATH /stand-in/ffmpeg/bin/ffmpeg"))
      and ($install | test("--set-default SCRYPTED_PYTHON_PATH \($r.passthru.python)"))
      and ($install | test("--set-default SCRYPTED_PYTHON313_PATH \($r.passthru.python)"))),
    check("meta: mainProgram scrypted-serve, ISC, Linux"; .meta.mainProgram == "scrypted-serve" and .meta.license == "isc" and .meta.platforms == ["x86_64-linux", "aarch64-linux"]),
    check("passthru.updateScript is nix/packages/scrypted/update.sh"; .passthru.updateScript | length == 1 and (.[0] | endswith("/nix/packages/scrypted/update.sh"))),
    check("a plugins argument is refused, not ignored"; .pluginsRefused)
  ' "$tmp/recipe.json" | tee "$tmp/out"
  if grep -q '^FAIL' "$tmp/out"; then
    exit 1
  fi
done

echo "--- the lock the recipe reads"
if [[ -z ${SCRYPTED_SOURCE_GIT:-} ]]; then
  echo "skipped: SCRYPTED_SOURCE_GIT is not set (a git directory of koush/scrypted; the source cannot be fetched here)"
  exit 0
fi
rev=$(jq -r .rev nix/packages/scrypted/pin.json)
hash=$(jq -r .hash nix/packages/scrypted/pin.json)
git --git-dir="$SCRYPTED_SOURCE_GIT" archive --format=tar.gz --prefix="scrypted-$rev/" "$rev" >"$tmp/source.tar.gz"
# The archive GitHub serves for a commit is `git archive` of it: added to the
# store under the pinned hash, it is what the recipe's fetch would find.
nix-prefetch-url --unpack --name source "file://$tmp/source.tar.gz" "$hash" >/dev/null 2>&1 ||
  {
    echo "FAIL: the archive of $rev does not have the pinned hash $hash" >&2
    exit 1
  }
root=$(nix-instantiate --eval --strict --json --arg forceLock true --arg lib null tests/nix/lib/scrypted-package.nix -A record.npmDeps | jq -r .)
jq -e --arg v "$(jq -r .version nix/packages/scrypted/pin.json)" \
  '.name == "@scrypted/server" and .version == $v' "$root/package.json" >/dev/null ||
  {
    echo "FAIL: $root/package.json is not @scrypted/server at the pinned version" >&2
    exit 1
  }
jq -e '.lockfileVersion == 3 and (.packages | length) > 100' "$root/package-lock.json" >/dev/null ||
  {
    echo "FAIL: $root/package-lock.json is not the lock importNpmLock can read" >&2
    exit 1
  }
echo "ok: importNpmLock reads $root: @scrypted/server $(jq -r .version "$root/package.json") and a lock of $(jq '.packages | length' "$root/package-lock.json") packages"
