{ lib, rustPlatform }:

import ./workspace-crate.nix { inherit lib rustPlatform; } {
  pname = "nixgen";
  description = "Generates pinned Nix packages for every Scrypted plugin on the npm registry";
  # askama compiles the templates into the binary.
  extraSources = [ "templates" ];
  # These compare the committed nix/ tree with what nixgen makes of it; that
  # tree is not part of the build's source, and tests/run checks it.
  checkFlags = [ "--skip=committed::" ];
}
