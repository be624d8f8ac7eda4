#!/usr/bin/env bash
# Update step of the hand-maintained openvino plugin (the flake's `apps.update`
# runs it after nixgen): bump version and hash in package.nix to the registry's
# latest release and refresh the requirement pins from the requirements.txt
# inside its plugin.zip. nixpkgs supplies the Python packages themselves, so a
# requirement that is new (or gone) needs a hand edit of package.nix; this
# script then stops and says which.
#
# Usage: update.sh [--registry URL]
# The registry is the one nixgen uses: --registry, else `registry` in
# nix/plugins/nixgen.toml, else $NPM_CONFIG_REGISTRY, else registry.npmjs.org.
# It edits the package.nix beside it or, run from the store as
# passthru.updateScript, nix/plugins/openvino/package.nix under the current
# directory (nixpkgs runs update scripts from the root of the checkout).
# Needs: bash, curl, jq, tar, gzip, unzip, coreutils, sed, grep.
set -euo pipefail

die() {
  echo "openvino update: $*" >&2
  exit 1
}

for tool in curl jq tar gzip unzip sed grep sha512sum base64 cmp; do
  command -v "$tool" >/dev/null || die "needs $tool on PATH"
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f $here/package.nix ]]; then
  plugins=$(dirname "$here")
else
  plugins=$PWD/nix/plugins
fi
nixfile=$plugins/openvino/package.nix
[[ -f $nixfile ]] || die "$nixfile not found; run from the root of a scrypted-nix checkout"

# nixgen.toml's top-level `registry = "..."` (a one-line basic string, as the
# shipped file shows it); keys after the first [table] belong to that table.
config=$plugins/nixgen.toml
registry=
top=$([[ -f $config ]] && sed '/^[[:space:]]*\[/,$d' "$config" || true)
if grep -Eq '^[[:space:]]*registry[[:space:]]*=' <<<"$top"; then
  registry=$(sed -nE 's/^[[:space:]]*registry[[:space:]]*=[[:space:]]*"([^"\\]+)"[[:space:]]*(#.*)?$/\1/p' <<<"$top")
  [[ -n $registry ]] || die "cannot read the registry line of $config (write it as registry = \"https://...\")"
fi
registry=${registry:-${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}}
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

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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

tar -xzf "$work/plugin.tgz" -C "$work" package/dist/plugin.zip ||
  die "$tarball has no package/dist/plugin.zip"
# unzip exits 11 when the archive is fine but lacks the file.
zip_status=0
unzip -p "$work/package/dist/plugin.zip" requirements.txt >"$work/requirements.txt" || zip_status=$?
case $zip_status in
  0) ;;
  11) die "plugin.zip of $version has no requirements.txt" ;;
  *) die "cannot read plugin.zip of $version (unzip exit $zip_status)" ;;
esac

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
