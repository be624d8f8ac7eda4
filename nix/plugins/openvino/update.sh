#!/usr/bin/env bash
# Update step of the hand-maintained openvino plugin (the flake's `apps.update`
# runs it after nixgen): bump version and hash in package.nix to the registry's
# latest release and refresh the requirement pins from the requirements.txt
# inside its plugin.zip. nixpkgs supplies the Python packages themselves, so a
# requirement that is new (or gone) needs a hand edit of package.nix; this
# script then stops and says which.
#
# Usage: update.sh [--registry URL]   (default: $NPM_REGISTRY or registry.npmjs.org)
# Needs: bash, curl, jq, tar, unzip, coreutils, sed.
set -euo pipefail

registry=${NPM_REGISTRY:-https://registry.npmjs.org}
while (($#)); do
  case $1 in
    --registry)
      registry=${2:?--registry needs a URL}
      shift 2
      ;;
    *)
      echo "update.sh: unknown argument: $1" >&2
      exit 2
      ;;
  esac
done
registry=${registry%/}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nixfile=$here/package.nix
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

die() {
  echo "openvino update: $*" >&2
  exit 1
}

curl -fsSL --retry 3 "$registry/@scrypted/openvino/latest" -o "$work/latest.json" ||
  die "cannot fetch $registry/@scrypted/openvino/latest"
version=$(jq -er '.version' "$work/latest.json") || die "registry answer has no version"
integrity=$(jq -er '.dist.integrity' "$work/latest.json") || die "registry answer has no dist.integrity"
tarball=$(jq -er '.dist.tarball // empty' "$work/latest.json") ||
  tarball="$registry/@scrypted/openvino/-/openvino-$version.tgz"
[[ $version =~ ^[0-9A-Za-z.+-]+$ ]] || die "unexpected version: $version"
[[ $integrity == sha512-* ]] || die "expected a sha512 integrity, got: $integrity"

current_version=$(sed -nE 's/^  version = "([^"]*)";$/\1/p' "$nixfile")
current_hash=$(sed -nE 's/^  hash = "([^"]*)";$/\1/p' "$nixfile")
[[ -n $current_version && -n $current_hash ]] || die "cannot find version/hash lines in $nixfile"

curl -fsSL --retry 3 "$tarball" -o "$work/plugin.tgz" || die "cannot download $tarball"
hex=$(sha512sum "$work/plugin.tgz" | cut -d' ' -f1)
actual="sha512-$(for ((i = 0; i < ${#hex}; i += 2)); do printf '%b' "\\x${hex:i:2}"; done | base64 -w0)"
[[ $actual == "$integrity" ]] || die "tarball hash $actual does not match the registry's $integrity"

tar -xzf "$work/plugin.tgz" -C "$work" package/dist/plugin.zip
unzip -p "$work/package/dist/plugin.zip" requirements.txt >"$work/requirements.txt" ||
  die "plugin.zip of $version has no requirements.txt"

declare -A pins=()
while IFS= read -r line; do
  line=${line%%#*}
  line=${line//$'\r'/}
  line=$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"$line")
  [[ -z $line ]] && continue
  [[ $line =~ ^([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)$ ]] ||
    die "requirements.txt line not of the form name==version: $line"
  pins[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done <"$work/requirements.txt"

mapfile -t mapped < <(sed -nE 's/^    "([^"]+)" = requirement "[^"]*" .*/\1/p' "$nixfile")
missing=()
for name in "${!pins[@]}"; do
  printf '%s\n' "${mapped[@]}" | grep -Fxq -- "$name" || missing+=("$name")
done
gone=()
for name in "${mapped[@]}"; do
  [[ -v "pins[$name]" ]] || gone+=("$name")
done
if ((${#missing[@]} || ${#gone[@]})); then
  ((${#missing[@]})) && echo "openvino $version requires packages package.nix does not map to nixpkgs: ${missing[*]}" >&2
  ((${#gone[@]})) && echo "openvino $version no longer requires: ${gone[*]}" >&2
  die "edit the requirements in $nixfile by hand, then run this again"
fi

cp "$nixfile" "$work/package.nix"
sed -i -E \
  -e "s|^  version = \"[^\"]*\";$|  version = \"$version\";|" \
  -e "s|^  hash = \"[^\"]*\";$|  hash = \"$integrity\";|" \
  "$work/package.nix"
for name in "${!pins[@]}"; do
  quoted=${name//./\\.}
  sed -i -E "s|^(    \"$quoted\" = requirement )\"[^\"]*\"|\\1\"${pins[$name]}\"|" "$work/package.nix"
done

if cmp -s "$nixfile" "$work/package.nix"; then
  echo "openvino: up to date ($version)"
else
  cp "$work/package.nix" "$nixfile"
  echo "openvino: $current_version -> $version"
fi
