{
  lib,
  rustPlatform,
}:

let
  root = ../..;
  workspace = (lib.importTOML (root + "/Cargo.toml")).workspace.package;
in
rustPlatform.buildRustPackage {
  pname = "sideloadd";
  inherit (workspace) version;

  # Only what cargo reads. The templates belong to nixgen alone, so changing them
  # does not rebuild the daemon (and restart it on every server).
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (root + "/crates")
    ];
  };

  cargoLock.lockFile = ../../Cargo.lock;

  # One workspace, two tools: build and test only this one.
  cargoBuildFlags = [
    "-p"
    "sideloadd"
  ];
  cargoTestFlags = [
    "-p"
    "sideloadd"
  ];

  meta = {
    description = "Provisions Nix-built Scrypted plugins into a running Scrypted server at boot";
    homepage = workspace.repository;
    license = lib.licenses.mit;
    mainProgram = "sideloadd";
  };
}
