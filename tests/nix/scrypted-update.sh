#!/usr/bin/env bash
# nix/packages/scrypted/update.sh against a fake GitHub on loopback: it finds
# the newest server commit, hashes its archive as Nix does, checks the lock and
# rewrites pin.json whole, or leaves it as it was when anything is wrong.
#
# Where the real source is at hand (SCRYPTED_SOURCE_GIT=<a git directory of
# koush/scrypted>), the committed pin is checked against it: the same run, fed
# the archive of the pinned commit, must find the pin up to date, which means
# the hash is that archive's NAR hash, the version is server/package.json's,
# and every package of the lock has a sha512 integrity. Skipped otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

update=$PWD/nix/packages/scrypted/update.sh
committed_pin=$PWD/nix/packages/scrypted/pin.json
# shellcheck source=tests/nix/lib/serve.sh
source tests/nix/lib/serve.sh
tmp=$(mktemp -d)
trap 'stop_serving; rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The fake GitHub: files laid out as the two URLs update.sh asks for
# (http.server ignores the query string).
root=$tmp/www
mkdir -p "$root/api/repos/koush/scrypted" "$root/gh/koush/scrypted/archive"
serve "$root" "$tmp/http.log"
export SCRYPTED_GITHUB=$served_url/gh SCRYPTED_GITHUB_API=$served_url/api

# Publishes $2 (a directory) as the archive of commit $1 and makes $1 the
# newest server commit.
publish() {
  local rev=$1 dir=$2
  tar -czf "$root/gh/koush/scrypted/archive/$rev.tar.gz" -C "$(dirname "$dir")" "$(basename "$dir")"
  printf '[{"sha":"%s"}]' "$rev" >"$root/api/repos/koush/scrypted/commits"
}

# A small source tree in the shape of koush/scrypted.
make_source() {
  local dir=$1 version=$2 integrity=$3
  mkdir -p "$dir/server/src"
  echo "export {}" >"$dir/server/src/main.ts"
  printf "import semver from 'semver';\nconst MIN_SCRYPTED_CORE_VERSION = 'v%s';\n" "${4:-0.2.6}" >"$dir/server/src/runtime.ts"
  jq -n --arg v "$version" '{name: "@scrypted/server", version: $v}' >"$dir/server/package.json"
  jq -n --arg v "$version" --arg i "$integrity" '{
    name: "@scrypted/server", version: $v, lockfileVersion: 3,
    packages: {
      "": {name: "@scrypted/server", version: $v},
      "node_modules/ws": {version: "8.18.2", resolved: "https://registry.npmjs.org/ws/-/ws-8.18.2.tgz", integrity: $i},
      "node_modules/linked": {link: true, resolved: "../linked"}
    }}' >"$dir/server/package-lock.json"
}

sha512=sha512-$(printf 'x%.0s' $(seq 86))==
rev1=1111111111111111111111111111111111111111
rev2=2222222222222222222222222222222222222222
pin=$tmp/pin.json
cp "$committed_pin" "$pin"

echo "--- a new server commit"
make_source "$tmp/src1/scrypted-$rev1" 9.8.7 "$sha512"
publish "$rev1" "$tmp/src1/scrypted-$rev1"
status=0
bash "$update" --check "$pin" >"$tmp/out" 2>&1 || status=$?
[[ $status -eq 1 ]] || fail "--check with an update pending exited $status: $(cat "$tmp/out")"
cmp -s "$pin" "$committed_pin" || fail "--check wrote $pin"
grep -q -- "-> 9.8.7 (1111111)" "$tmp/out" || fail "--check did not name the update: $(cat "$tmp/out")"
echo "ok: --check reports the update and writes nothing"

bash "$update" "$pin" >"$tmp/out" 2>&1 || fail "update failed: $(cat "$tmp/out")"
expected_hash=$(nix --extra-experimental-features nix-command hash path "$tmp/src1/scrypted-$rev1")
jq -e --arg h "$expected_hash" --arg r "$rev1" \
  '. == {version: "9.8.7", rev: $r, hash: $h, minCoreVersion: "0.2.6"}' "$pin" >/dev/null ||
  fail "pin.json is $(cat "$pin"), expected version 9.8.7, rev $rev1, hash $expected_hash, minCoreVersion 0.2.6"
[[ $(stat -c %a "$pin") == 644 ]] || fail "pin.json has mode $(stat -c %a "$pin")"
[[ -z $(find "$tmp" -maxdepth 1 -name '.pin.json.*') ]] || fail "a temporary pin file was left behind"
echo "ok: pin.json rewritten: version, commit, the NAR hash Nix computes for the unpacked archive, and the server's minimum core version"

bash "$update" "$pin" >"$tmp/out" 2>&1 || fail "second run failed: $(cat "$tmp/out")"
grep -q "is up to date" "$tmp/out" || fail "second run: $(cat "$tmp/out")"
bash "$update" --check "$pin" >/dev/null 2>&1 || fail "--check on an up-to-date pin exited non-zero"
echo "ok: an up-to-date pin is left alone"

# Every failure below must leave the pin exactly as it is now.
cp "$pin" "$tmp/good.json"
expect_refusal() {
  local what=$1 needle=$2
  status=0
  bash "$update" "$pin" >"$tmp/out" 2>&1 || status=$?
  [[ $status -eq 2 ]] || fail "$what: exited $status: $(cat "$tmp/out")"
  grep -qF -- "$needle" "$tmp/out" || fail "$what: error does not say '$needle': $(cat "$tmp/out")"
  cmp -s "$pin" "$tmp/good.json" || fail "$what: pin.json changed"
  echo "ok: $what is refused ($(head -n 1 "$tmp/out"))"
}

make_source "$tmp/src5/scrypted-$rev2" 9.8.8 "$sha512"
sed -i '/MIN_SCRYPTED_CORE_VERSION/d' "$tmp/src5/scrypted-$rev2/server/src/runtime.ts"
publish "$rev2" "$tmp/src5/scrypted-$rev2"
expect_refusal "a server without MIN_SCRYPTED_CORE_VERSION" "MIN_SCRYPTED_CORE_VERSION"

make_source "$tmp/src2/scrypted-$rev2" 9.8.8 "sha1-abc="
publish "$rev2" "$tmp/src2/scrypted-$rev2"
expect_refusal "a lock entry without sha512" "node_modules/ws"

rm "$root/gh/koush/scrypted/archive/$rev2.tar.gz"
expect_refusal "a missing archive" "$SCRYPTED_GITHUB/koush/scrypted/archive/$rev2.tar.gz"

printf '[{"sha":"$(touch /tmp/pwned)"}]' >"$root/api/repos/koush/scrypted/commits"
expect_refusal "a malformed commit id" "malformed commit id"

make_source "$tmp/src3/scrypted-$rev2" '1.0.0"; x = "' "$sha512"
publish "$rev2" "$tmp/src3/scrypted-$rev2"
expect_refusal "a version that is not semver" "unusable version"

make_source "$tmp/src4/scrypted-$rev1" 9.8.7 "$sha512"
echo "changed" >"$tmp/src4/scrypted-$rev1/server/src/main.ts"
publish "$rev1" "$tmp/src4/scrypted-$rev1"
expect_refusal "the pinned commit with other bytes" "but its archive hashes to"

echo "--- the committed pin against the real source"
if [[ -z ${SCRYPTED_SOURCE_GIT:-} ]]; then
  echo "skipped: SCRYPTED_SOURCE_GIT is not set (a git directory of koush/scrypted; the source cannot be fetched here)"
  exit 0
fi
rev=$(jq -r .rev "$committed_pin")
git --git-dir="$SCRYPTED_SOURCE_GIT" cat-file -e "$rev^{commit}" ||
  fail "SCRYPTED_SOURCE_GIT=$SCRYPTED_SOURCE_GIT has no commit $rev"
git --git-dir="$SCRYPTED_SOURCE_GIT" archive --format=tar.gz --prefix="scrypted-$rev/" "$rev" \
  >"$root/gh/koush/scrypted/archive/$rev.tar.gz"
printf '[{"sha":"%s"}]' "$rev" >"$root/api/repos/koush/scrypted/commits"
cp "$committed_pin" "$pin"
bash "$update" --check "$pin" >"$tmp/out" 2>&1 || fail "the committed pin does not match the source of $rev: $(cat "$tmp/out")"
echo "ok: $(cat "$tmp/out") (hash, version and lock checked against the source)"
