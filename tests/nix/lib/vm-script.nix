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
  storePath = name: "/nix/store/00000000000000000000000000000000-scrypted-plugin-${name}-1.0.0";
in
test.testScript {
  nodes.server = {
    mares.automation.scrypted = {
      plugins = [
        "snapshot"
        "homekit"
      ];
      pluginSet = lib.genAttrs [
        "snapshot"
        "homekit"
        "objectdetector"
      ] storePath;
      httpPort = 11080;
      httpsPort = 10443;
    };
    systemd.services.scrypted-sideload.restartTriggers = [
      "/nix/store/00000000000000000000000000000000-scrypted-sideload.json"
    ];
  };
}
