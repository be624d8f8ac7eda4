# shellcheck shell=bash
# Sourced by the tests: nix_files prints the repository's .nix files, one per line,
# relative to the root: every file git tracks or would track (so a new file is
# checked before it is added), or, outside a git checkout, all but target/.
nix_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard -- '*.nix' |
      while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done
  else
    find . -name '*.nix' -not -path './target/*' -not -path './.git/*' | sed 's|^\./||'
  fi | sort -u
}
