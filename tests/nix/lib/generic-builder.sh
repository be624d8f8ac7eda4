# shellcheck shell=bash
# The part of nixpkgs' stdenv genericBuild (pkgs/stdenv/generic/setup.sh) that
# this repository's Nix relies on, in the same order (tests/nix/nixpkgs.json,
# "setup"): the same shell options; structured attributes loaded from
# .attrs.sh; the setup hooks of nativeBuildInputs sourced; the phases unpack,
# patch, configure, build, check, install, fixup, installCheck; a phase given as
# an attribute evaluated, otherwise the default; runHook running the hook
# attribute first and then the hook array (postConfigure, then
# postConfigureHooks); `buildCommand` (runCommand) run instead of the phases;
# the setup, hooks included, under `set -eu`, the build itself under `set -e`
# (setup.sh restores the builder's options, and the default builder runs bash
# -e). Anything the builder asks for beyond that is refused, so the stand-in
# cannot quietly differ from the real stdenv. Not modelled: patchShebangs (host
# tools need none) and the fixup steps besides stripping.
set -eu -o pipefail

refuse() {
  echo "stand-in stdenv: $*; extend tests/nix/lib/generic-builder.sh or drop it from the builder" >&2
  exit 1
}

# Structured attributes (__structuredAttrs = true): nix writes them as shell
# declarations instead of environment variables.
attrs_sh=${NIX_ATTRS_SH_FILE:-${NIX_BUILD_TOP:-$PWD}/.attrs.sh}
if [ -e "$attrs_sh" ]; then
  # shellcheck disable=SC1090
  source "$attrs_sh"
  # shellcheck disable=SC2154 # declared by .attrs.sh
  for output in "${!outputs[@]}"; do export "$output=${outputs[$output]}"; done
  export PATH
fi

for unsupported in patches buildInputs propagatedBuildInputs prePhases postPhases phases; do
  if [ -n "${!unsupported:-}" ]; then refuse "$unsupported is not supported"; fi
done

# nixpkgs: the hook attribute (a string evaluated, or a function name),
# then each entry of the <hook>Hooks array.
runHook() {
  local hook=$1
  local array="${hook}Hooks[@]"
  if [ -n "${!hook:-}" ]; then
    if declare -F "${!hook}" >/dev/null; then "${!hook}"; else eval "${!hook}"; fi
  fi
  local entry
  for entry in ${!array+"${!array}"}; do
    if declare -F "$entry" >/dev/null; then "$entry"; else eval "$entry"; fi
  done
}

# shellcheck disable=SC2154 # standInInputs is an attribute of the derivation
for input in ${standInInputs:-}; do
  if [ -f "$input/nix-support/setup-hook" ]; then
    # shellcheck disable=SC1091
    source "$input/nix-support/setup-hook"
  fi
done

# What setup.sh does last: the builder's own options back (bash -e).
set +u

if [ -n "${buildCommand:-}" ]; then
  eval "$buildCommand"
  exit 0
fi

phase() {
  local name=$1
  echo "stand-in stdenv: running $name"
  if [ -n "${!name:-}" ]; then
    eval "${!name}"
  else
    "default_$name"
  fi
}

default_unpackPhase() {
  runHook preUnpack
  mkdir unpack
  # shellcheck disable=SC2154 # $src is an attribute of the derivation
  tar -xf "$src" -C unpack
  local roots=(unpack/*)
  if [ "${#roots[@]}" -ne 1 ] || [ ! -d "${roots[0]}" ]; then
    refuse "the source unpacks to ${#roots[@]} entries, not one directory"
  fi
  sourceRoot=${roots[0]}
  chmod -R u+w -- "$sourceRoot"
  runHook postUnpack
}

default_patchPhase() {
  runHook prePatch
  runHook postPatch
}

default_configurePhase() {
  runHook preConfigure
  if [ -e configure ]; then refuse "a configure script needs the real configurePhase"; fi
  runHook postConfigure
}

default_buildPhase() {
  runHook preBuild
  if [ -e Makefile ] || [ -e makefile ] || [ -e GNUmakefile ]; then refuse "a Makefile needs the real buildPhase"; fi
  runHook postBuild
}

default_installPhase() { refuse "no installPhase given"; }
default_installCheckPhase() { refuse "no installCheckPhase given"; }

# nixpkgs strips debug sections from the files below each of stripDebugList
# (default: lib lib32 lib64 libexec bin sbin), leaving what is not ELF alone;
# the strip hook comes with the C toolchain, so stdenvNoCC strips nothing.
default_fixupPhase() {
  runHook preFixup
  command -v strip >/dev/null || {
    runHook postFixup
    return
  }
  local dir
  # shellcheck disable=SC2154 # stripDebugList is an attribute of the derivation
  for dir in ${stripDebugList[@]:-lib lib32 lib64 libexec bin sbin}; do
    [ -e "$out/$dir" ] || continue
    find "$out/$dir" -type f -print0 | while IFS= read -r -d '' file; do
      if [ "$(head -c 4 "$file" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        chmod u+w "$file"
        strip -S "$file"
      fi
    done
  done
  runHook postFixup
}

if [ "${dontUnpack:-}" != 1 ]; then
  phase unpackPhase
  cd "$sourceRoot"
fi
phase patchPhase
if [ "${dontConfigure:-}" != 1 ]; then phase configurePhase; fi
if [ "${dontBuild:-}" != 1 ]; then phase buildPhase; fi
if [ "${doCheck:-}" = 1 ]; then refuse "checkPhase cannot be emulated"; fi
phase installPhase
if [ "${dontFixup:-}" != 1 ]; then phase fixupPhase; fi
if [ "${doInstallCheck:-}" = 1 ]; then phase installCheckPhase; fi
