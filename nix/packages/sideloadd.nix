{ lib, rustPlatform }:

import ./workspace-crate.nix { inherit lib rustPlatform; } {
  pname = "sideloadd";
  description = "Provisions Nix-built Scrypted plugins into a running Scrypted server at boot";
}
