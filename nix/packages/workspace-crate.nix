# One binary crate of this Cargo workspace, built and tested on its own.
{ lib, rustPlatform }:

{
  pname,
  description,
  # Repository paths beyond the workspace's Cargo files and crates/ that the
  # crate reads when it compiles.
  extraSources ? [ ],
  # Test-binary arguments, such as `--skip` for tests that need more of the
  # repository than the build gets.
  checkFlags ? [ ],
}:

let
  root = ../..;
  workspace = (lib.importTOML (root + "/Cargo.toml")).workspace.package;
in
rustPlatform.buildRustPackage {
  inherit pname checkFlags;
  inherit (workspace) version;

  # Only what cargo reads, so editing Nix files or docs does not rebuild the tool
  # (nor restart the daemon on every server).
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions (
      [
        (root + "/Cargo.toml")
        (root + "/Cargo.lock")
        (root + "/crates")
      ]
      ++ map (path: root + "/${path}") extraSources
    );
  };

  cargoLock.lockFile = ../../Cargo.lock;

  # One workspace, several crates: build and test only this one.
  cargoBuildFlags = [
    "-p"
    pname
  ];
  cargoTestFlags = [
    "-p"
    pname
  ];

  meta = {
    inherit description;
    homepage = workspace.repository;
    license = lib.licenses.mit;
    mainProgram = pname;
  };
}
