# shellcheck shell=bash
# The part of nixpkgs' stdenv genericBuild that nix/mk-scrypted-plugin.nix relies
# on: the same shell options, the same phase order, phases given as attributes run
# by eval, string hooks run by runHook. Anything the builder asks for beyond that
# is refused, so the stand-in cannot quietly differ from the real stdenv.
set -eu -o pipefail

refuse() {
  echo "stand-in stdenv: $*; extend tests/nix/lib/generic-builder.sh or drop it from the builder" >&2
  exit 1
}

for unsupported in patches buildInputs propagatedBuildInputs prePhases postPhases phases; do
  if [ -n "${!unsupported:-}" ]; then refuse "$unsupported is not supported"; fi
done

runHook() {
  local hook=$1
  if [ -n "${!hook:-}" ]; then eval "${!hook}"; fi
}

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

default_configurePhase() {
  if [ -e configure ]; then refuse "a configure script needs the real configurePhase"; fi
}

default_buildPhase() {
  if [ -e Makefile ] || [ -e makefile ] || [ -e GNUmakefile ]; then refuse "a Makefile needs the real buildPhase"; fi
}

default_installPhase() { refuse "no installPhase given"; }
default_installCheckPhase() { refuse "no installCheckPhase given"; }

phase unpackPhase
cd "$sourceRoot"
if [ "${dontConfigure:-}" != 1 ]; then phase configurePhase; fi
if [ "${dontBuild:-}" != 1 ]; then phase buildPhase; fi
phase installPhase
if [ "${dontFixup:-}" != 1 ]; then refuse "fixupPhase (dontFixup unset) cannot be emulated"; fi
if [ "${doInstallCheck:-}" = 1 ]; then phase installCheckPhase; fi
