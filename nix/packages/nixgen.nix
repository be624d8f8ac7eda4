{
  lib,
  rustPlatform,
}:

let
  root = ../..;
  workspace = (lib.importTOML (root + "/Cargo.toml")).workspace.package;
in
rustPlatform.buildRustPackage {
  pname = "nixgen";
  inherit (workspace) version;

  # Only what cargo reads, so editing Nix files or docs does not rebuild the tool.
  # askama compiles templates/ into the binary at build time.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (root + "/crates")
      (root + "/templates")
    ];
  };

  cargoLock.lockFile = ../../Cargo.lock;

  # One workspace, two tools: build and test only this one.
  cargoBuildFlags = [
    "-p"
    "nixgen"
  ];
  cargoTestFlags = [
    "-p"
    "nixgen"
  ];

  meta = {
    description = "Generates pinned Nix packages for every Scrypted plugin on the npm registry";
    homepage = workspace.repository;
    license = lib.licenses.mit;
    mainProgram = "nixgen";
  };
}
