# Renders the VM test's Python driver script (tests/nixos/sideload.nix) with
# stand-ins for pkgs and the evaluated nodes, so tests/nix/vm-script.sh can
# compile it here, where no VM can boot.
{ lib }:
let
  standIns = import ./stand-ins.nix { inherit lib; };
  pkgs = {
    inherit lib;
    # As strict as nixpkgs' (tests/nix/nixpkgs.json); keeps nodes and testScript.
    inherit (standIns) testers;
    curl = "curl";
  };
  test = import ../../nixos/sideload.nix {
    inherit pkgs;
    self.nixosModules.default = { };
  };
in
test.testScript {
  nodes.server = {
    mares.automation.scrypted = {
      httpPort = 11080;
      httpsPort = 10443;
    };
    systemd.services.scrypted-sideload.restartTriggers = [
      "/nix/store/00000000000000000000000000000000-scrypted-sideload.json"
    ];
    specialisation.more.configuration.systemd.services.scrypted-sideload.restartTriggers = [
      "/nix/store/11111111111111111111111111111111-scrypted-sideload.json"
    ];
    specialisation.pruned.configuration.systemd.services.scrypted-sideload.restartTriggers = [
      "/nix/store/22222222222222222222222222222222-scrypted-sideload.json"
    ];
    specialisation.broken.configuration.systemd.services.scrypted-sideload.restartTriggers = [
      "/nix/store/33333333333333333333333333333333-scrypted-sideload.json"
    ];
  };
}
