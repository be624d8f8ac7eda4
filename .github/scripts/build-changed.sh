#!/usr/bin/env bash
# Builds every plugin whose package.nix the update added or changed (all of them
# when the builder, nix/mk-scrypted-plugin.nix, changed): a pin that does not
# build must not reach the pull request as if it did. Removed plugins have
# nothing to build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

changed=$(git status --porcelain --untracked-files=all -- nix/)
if grep -q 'nix/mk-scrypted-plugin.nix$' <<<"$changed"; then
  names=$(for f in nix/plugins/*/package.nix; do basename "$(dirname "$f")"; done)
else
  names=$(sed -n 's|^.. nix/plugins/\([^/]*\)/package.nix$|\1|p' <<<"$changed")
fi

count=0
for name in $names; do
  [ -e "nix/plugins/$name/package.nix" ] || continue
  echo "--- building $name"
  # Quoted: attribute names may start with a digit or `_--` (README.md, "Plugin names").
  nix build --no-link --print-build-logs ".#scrypted.plugins.\"$name\""
  count=$((count + 1))
done
echo "build-changed: $count plugin(s) built"
