# Native node addons built for the node the server runs, shared by the server
# package and the plugins' native npm dependencies (one implementation, which
# tests/nix/stand-ins.sh builds for real on a fixture addon).
#
# importNpmLock's hook points node-gyp at the headers of nixpkgs' default node,
# whose ABI may differ from the server's; these point it at the server's.
{ srcOnly }:

nodejs: rec {
  # npm_config_nodedir as the hook names it (srcOnly of a node), for this node.
  # Needed to compile, never to run: callers put it in disallowedReferences.
  headers = srcOnly nodejs;

  # For preBuild (node_modules exists by then): `build_addon DIR` compiles
  # DIR's binding.gyp for this node and keeps only the stripped modules of its
  # build tree. The rest of build/ (Makefiles, objects, config.gypi) and the
  # modules' debug sections name the headers and would drag them into the
  # runtime closure; stdenv strips lib/ and bin/ only, and buildNpmPackage
  # not at all.
  buildAddon = ''
    export npm_config_nodedir=${headers}
    build_addon() {
      (cd "$1" && node "$npm_config_node_gyp" rebuild --jobs "$NIX_BUILD_CORES")
      local keep
      keep=$(mktemp -d)
      mv "$1"/build/Release/*.node "$keep"
      rm -rf "$1/build"
      mkdir -p "$1/build/Release"
      mv "$keep"/*.node "$1/build/Release/"
      $STRIP -S "$1"/build/Release/*.node
    }
  '';

  # Loads each NUL-separated module path on stdin in this node: one built
  # against other headers fails (NODE_MODULE_VERSION), as does a library left
  # unresolved, at build time rather than when a plugin starts.
  loadEach = "xargs -0 -r -n1 ${nodejs}/bin/node -e 'process.dlopen({ exports: {} }, process.argv[1])'";
}
