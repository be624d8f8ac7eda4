#!/usr/bin/env bash
# Refreshes the Scrypted server pin (pin.json beside package.nix): the newest
# commit of koush/scrypted that touches server/, the version its
# server/package.json says, and the Nix hash of that commit's source archive.
#
#   update.sh [--check] [PIN_FILE]
#
# PIN_FILE defaults to nix/packages/scrypted/pin.json under the current
# directory (nixpkgs runs update scripts from the root of the checkout).
# --check writes nothing and exits 1 when the pin is out of date.
# SCRYPTED_GITHUB (https://github.com) and SCRYPTED_GITHUB_API
# (https://api.github.com) point it elsewhere, for tests and mirrors;
# SCRYPTED_BRANCH (main) picks the branch. GITHUB_TOKEN, when set, is sent to
# the API only (it raises GitHub's rate limit).
set -euo pipefail

check=false
if [[ ${1:-} == --check ]]; then
  check=true
  shift
fi
pin=${1:-nix/packages/scrypted/pin.json}
github=${SCRYPTED_GITHUB:-https://github.com}
api=${SCRYPTED_GITHUB_API:-https://api.github.com}
branch=${SCRYPTED_BRANCH:-main}

die() {
  echo "scrypted update: $*" >&2
  exit 2
}

[[ -f $pin ]] || die "$pin not found; run from the root of a scrypted-nix checkout or name the pin file"
old_version=$(jq -er .version "$pin") || die "$pin has no version"
old_rev=$(jq -er .rev "$pin") || die "$pin has no rev"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Without -f curl would hand an error page on as data.
fetch() { curl -fsSL --retry 3 --max-time 300 "$@"; }

auth=()
[[ -n ${GITHUB_TOKEN:-} ]] && auth=(-H "Authorization: Bearer $GITHUB_TOKEN")
commits_url="$api/repos/koush/scrypted/commits?sha=$branch&path=server&per_page=1"
fetch "${auth[@]}" "$commits_url" >"$tmp/commits.json" || die "cannot read $commits_url"
rev=$(jq -er '.[0].sha' "$tmp/commits.json" 2>/dev/null) || die "$commits_url lists no commit"
[[ $rev =~ ^[0-9a-f]{40}$ ]] || die "$commits_url gave a malformed commit id"

archive_url="$github/koush/scrypted/archive/$rev.tar.gz"
fetch -o "$tmp/source.tar.gz" "$archive_url" || die "cannot download $archive_url"
mkdir "$tmp/unpacked"
tar -xzf "$tmp/source.tar.gz" -C "$tmp/unpacked" || die "$archive_url is not a gzip tarball"
roots=("$tmp"/unpacked/*)
[[ ${#roots[@]} -eq 1 && -d ${roots[0]} ]] || die "$archive_url does not hold one top-level directory"
source=${roots[0]}

server=$source/server
[[ -f $server/package.json && -f $server/package-lock.json ]] ||
  die "$archive_url has no server/package.json and server/package-lock.json"
version=$(jq -er '.version | strings' "$server/package.json") || die "server/package.json at $rev has no version"
[[ ${#version} -le 64 && $version =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] ||
  die "server/package.json at $rev has an unusable version"

# The oldest @scrypted/core the server accepts: with an older one, or none,
# the first request to the web UI makes it install npm's latest core
# (getPluginForEndpoint in server/src/runtime.ts). The NixOS module refuses a
# pinned core below it.
runtime=$server/src/runtime.ts
[[ -f $runtime ]] || die "server/src/runtime.ts is missing at $rev; cannot read MIN_SCRYPTED_CORE_VERSION"
min_core=$(sed -nE "s/^const MIN_SCRYPTED_CORE_VERSION = '(v?[0-9]+\.[0-9]+\.[0-9]+)';\$/\1/p" "$runtime")
[[ $(wc -l <<<"$min_core") -eq 1 && -n $min_core ]] ||
  die "server/src/runtime.ts at $rev has no single MIN_SCRYPTED_CORE_VERSION = 'x.y.z' line"
min_core=${min_core#v}

# importNpmLock fetches every package of the lock by its integrity: a package
# without a sha512 one cannot be built offline.
unpinned=$(jq -r '
  .packages | to_entries[]
  | select(.key != "" and (.value.link | not))
  | select((.value.resolved | type) != "string" or ((.value.integrity // "") | startswith("sha512-") | not))
  | .key' "$server/package-lock.json") || die "server/package-lock.json at $rev does not parse"
[[ -z $unpinned ]] || die "server/package-lock.json at $rev has packages without a sha512 integrity: $(echo "$unpinned" | tr '\n' ' ')"

hash=$(nix --extra-experimental-features nix-command hash path "$source") || die "cannot hash the source of $rev"

if [[ $rev == "$old_rev" ]]; then
  old_hash=$(jq -r .hash "$pin")
  # Same commit, other bytes: the pin was edited by hand or the archive
  # changed; either way a build would fail on it.
  [[ $hash == "$old_hash" ]] || die "$pin pins $rev with $old_hash, but its archive hashes to $hash"
  [[ $version == "$old_version" ]] || die "$pin says version $old_version, but server/package.json at $rev says $version"
  old_min_core=$(jq -r '.minCoreVersion // empty' "$pin")
  if [[ $min_core != "$old_min_core" ]]; then
    echo "scrypted: $old_version ($old_rev): minCoreVersion ${old_min_core:-(none)} -> $min_core"
    if $check; then
      exit 1
    fi
  else
    echo "scrypted: $old_version ($old_rev) is up to date"
    exit 0
  fi
else
  echo "scrypted: $old_version (${old_rev:0:7}) -> $version (${rev:0:7})"
  if $check; then
    exit 1
  fi
fi

# Written beside the pin and renamed over it: an interrupted run leaves the
# old pin or the new one, never half of either.
new=$(mktemp "$(dirname "$pin")/.pin.json.XXXXXX")
trap 'rm -rf "$tmp" "$new"' EXIT
jq -n --arg version "$version" --arg rev "$rev" --arg hash "$hash" --arg minCore "$min_core" \
  '{version: $version, rev: $rev, hash: $hash, minCoreVersion: $minCore}' >"$new"
chmod 0644 "$new"
mv "$new" "$pin"
