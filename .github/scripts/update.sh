#!/usr/bin/env bash
# Runs `nix run .#update` (nixgen, then the server's pin) with nixgen's
# Markdown summary written to $1, and reports to the workflow, through
# $GITHUB_OUTPUT, the update's exit status and whether the tree changed. A failed
# update is not this step's failure: the workflow still opens a pull request for
# what did change, then fails at the end (see update.yml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

body=${1:?usage: update.sh BODY.md}
: "${GITHUB_OUTPUT:?GITHUB_OUTPUT must name the step output file}"

status=0
NIXGEN_MARKDOWN_FILE=$body nix run .#update || status=$?

if [ -n "$(git status --porcelain -- nix/)" ]; then
  changed=true
else
  changed=false
fi
# nixgen writes the body even when it fails to update some plugins; if it could
# not start at all there is none, and the pull request says so.
if [ ! -s "$body" ]; then
  printf '## Scrypted plugin updates\n\n`nix run .#update` exited with status %s before writing a summary; see the workflow log.\n' \
    "$status" >"$body"
fi
{
  echo "status=$status"
  echo "changed=$changed"
} >>"$GITHUB_OUTPUT"
echo "update: status $status, tree changed: $changed"
