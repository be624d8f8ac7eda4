#!/usr/bin/env bash
# Builds real plugins (snapshot, homekit, unifi-protect, and the community plugin
# @vityevato/hikvision-doorbell from its own npm scope) with the real
# nix/mk-scrypted-plugin.nix, the real package.nix files and the real fetch
# (<nix/fetchurl.nix>, from the registry URL rendered into the builder). Only
# stdenvNoCC.mkDerivation and the unzip/jq/zip packages are stood in for, by host
# tools (tests/nix/lib/stand-ins.nix). Then checks what the builder must refuse:
# a wrong hash, a corrupt plugin.zip, a plugin.zip without its entry point
# (main.nodejs.js, or main.py for a Python plugin), a foreign package.json.
# The single-quoted arguments are Nix code; $out and ${...} are for Nix and the build.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

plugins=(snapshot homekit unifi-protect vityevato--hikvision-doorbell)
harness=tests/nix/lib/plugins.nix

required=(nix/mk-scrypted-plugin.nix)
for p in "${plugins[@]}"; do required+=("nix/plugins/$p/package.nix"); done
for f in "${required[@]}"; do
  [ -e "$f" ] || {
    echo "FAIL: $f is missing; generate the tree with nixgen (nix run .#update)" >&2
    exit 1
  }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# nix-build over the harness with extra Nix code applied to it.
build() {
  local expr=$1
  nix-build --no-out-link -E "let h = import ./$harness { }; in $expr"
}

eval_str() {
  nix-instantiate --eval --json -E "let h = import ./$harness { }; in $1" | jq -r .
}

for p in "${plugins[@]}"; do
  echo "--- building $p"
  out=$(build "h.packages.\"$p\"")
  version=$(eval_str "h.pins.\"$p\".version")
  src=$(eval_str "h.packages.\"$p\".src.outPath")

  # README.md, "Plugin names": <scope>--<name> is @<scope>/<name>, whose store
  # path says scrypted-plugin-<scope>-<name>-<version>.
  case $p in
  *--*) npm="@${p%%--*}/${p#*--}" stem="${p%%--*}-${p#*--}" ;;
  *) npm="@scrypted/$p" stem=$p ;;
  esac
  name=$(basename "$out")
  [ "${name#*-}" = "scrypted-plugin-$stem-$version" ] || {
    echo "FAIL: $p: store path $name is not named scrypted-plugin-$stem-$version" >&2
    exit 1
  }
  plugin_name=$(eval_str "h.packages.\"$p\".pluginName")
  [ "$plugin_name" = "$npm" ] || {
    echo "FAIL: $p: pluginName is $plugin_name, expected $npm" >&2
    exit 1
  }

  contents=$(cd "$out" && find . -mindepth 1 | sort | tr '\n' ' ')
  [ "$contents" = "./package.json ./plugin.zip " ] || {
    echo "FAIL: $p: output holds '$contents', expected exactly package.json and plugin.zip" >&2
    exit 1
  }

  # The tarball, unpacked by tar on its own, is the reference.
  mkdir "$tmp/$p"
  tar -xzf "$src" -C "$tmp/$p"
  cmp "$out/package.json" "$tmp/$p/package/package.json"
  cmp "$out/plugin.zip" "$tmp/$p/package/dist/plugin.zip"
  echo "ok: $npm $version -> $out (package.json and plugin.zip match the tarball)"
done

# Expects the build of $1 to fail with a log matching $2.
expect_failure() {
  local what=$1 expr=$2 pattern=$3
  echo "--- expecting failure: $what"
  if build "$expr" >"$tmp/log" 2>&1; then
    cat "$tmp/log" >&2
    echo "FAIL: $what: the build succeeded" >&2
    exit 1
  fi
  local line
  line=$(grep -E -m1 -- "$pattern" "$tmp/log") || {
    cat "$tmp/log" >&2
    echo "FAIL: $what: the build failed, but not with /$pattern/" >&2
    exit 1
  }
  # The build's own error line, labelled: it reads like a failure, and is the
  # expected one.
  echo "ok: $what fails, as expected: ${line:0:160}"
}

# snapshot's URL with homekit's (valid, different) integrity.
expect_failure "wrong hash" \
  'h.mkScryptedPlugin (h.pins.snapshot // { inherit (h.pins.homekit) hash; })' \
  'hash mismatch'

# Cutting off the end drops the central directory: no longer a readable zip.
expect_failure "truncated plugin.zip" \
  'h.mkScryptedPlugin (h.pins.snapshot // { postInstall = "truncate -s 4096 $out/plugin.zip"; })' \
  'plugin.zip is not a valid zip archive'

# Still a valid zip, but Scrypted would find nothing to run.
expect_failure "plugin.zip without main.nodejs.js" \
  'h.mkScryptedPlugin (h.pins.snapshot // { nativeBuildInputs = [ h.zip ]; postInstall = "chmod u+w $out/plugin.zip; zip -qd $out/plugin.zip main.nodejs.js"; })' \
  'plugin.zip has no main.nodejs.js'

# package.json must belong to the plugin it is pinned as.
expect_failure "package.json of another plugin" \
  'h.mkScryptedPlugin (h.pins.snapshot // { postInstall = "cp ${h.packages.homekit}/package.json $out/package.json"; })' \
  'package.json is for @scrypted/homekit, expected @scrypted/snapshot'

# A version bumped without a new src and hash still fetches the pinned tarball,
# whose package.json then contradicts the derivation.
expect_failure "version overridden without src" \
  '(h.packages.snapshot).overrideAttrs (_: { version = "999.0.0"; })' \
  'package.json has version [^ ]+, expected 999.0.0'

# Python plugins start from main.py and carry no main.nodejs.js. This pin is a test
# fixture (a small, served tarball), not the project's openvino package.
python_pin='{
  pname = "openvino";
  version = "0.1.199";
  hash = "sha512-31Zkx8DtjFe3F6qDxqoIvpO3nGPrBOTgMp6VNbr5+4rMtaN0tm22Bay3YtMFPjYAKJVDMPvqb3jjFROCcbDrQQ==";
}'
echo "--- building a Python plugin (openvino 0.1.199)"
out=$(build "h.mkScryptedPlugin $python_pin")
listing=$(unzip -Z1 "$out/plugin.zip")
grep -qx main.py <<<"$listing" || {
  echo "FAIL: openvino: plugin.zip has no main.py" >&2
  exit 1
}
echo "ok: openvino -> $out (entry point main.py)"
expect_failure "Python plugin.zip without main.py" \
  "h.mkScryptedPlugin ($python_pin"' // { nativeBuildInputs = [ h.zip ]; postInstall = "chmod u+w $out/plugin.zip; zip -qd $out/plugin.zip main.py"; })' \
  'plugin.zip has no main.py'

echo "build-plugins: all checks passed"
