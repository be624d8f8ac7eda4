# The flake's `nix run .#update` (wrapped by writeShellApplication, which adds
# the shebang, `set -euo pipefail` and the tools on PATH): regenerates the
# plugin tree with nixgen (Node and Python plugins alike), then, on a plain
# update, refreshes the one pin nixgen knows nothing about: the Scrypted
# server. Arguments go to nixgen alone (--check, --dry-run, --only ...): the
# caller asked for something narrower than a full update.

# The flake source in the store is read-only: write to the checkout the command
# is run in.
root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
if [ ! -e "$root/flake.nix" ] || [ ! -d "$root/nix" ]; then
  echo "update: $root is not a scrypted-nix checkout; run this from inside one" >&2
  exit 1
fi

status=0
nixgen update --root "$root" "$@" || status=$?

if [ "$#" -ne 0 ]; then
  echo "update: arguments given: the Scrypted server was not looked at"
  exit "$status"
fi
cd "$root"
bash nix/packages/scrypted/update.sh nix/packages/scrypted/pin.json || status=$?
exit "$status"
