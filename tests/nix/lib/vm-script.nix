# Renders the VM test's Python driver script (tests/nixos/sideload.nix) with
# stand-ins for pkgs and the evaluated nodes, so tests/nix/vm-script.sh can
# compile it here, where no VM can boot.
{ lib }:
let
  pkgs = {
    inherit lib;
    testers.runNixOSTest = test: test;
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
  };
}
