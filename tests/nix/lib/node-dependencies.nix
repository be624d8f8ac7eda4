# nix/plugin-node-dependencies.nix over the stand-ins: a plugin's dependency
# directory built from its pinned lock with the real fetch and the host's npm
# and node, for tests/nix/node-dependencies.sh.
{
  name,
  # The lock to build from (default: the one pinned beside the plugin).
  lockFile ? ../../../nix/plugins/${name}/package-lock.json,
  # `node --version` of the host, which stands in for the server's node.
  nodeVersion,
}:
let
  h = import ./plugins.nix { };
  inherit (h) standIns;
  lib = {
    importJSON = file: builtins.fromJSON (builtins.readFile file);
    versions.major = v: builtins.head (builtins.splitVersion v);
  };
  nodejs = standIns.hostTools "stand-in-nodejs" [ "node" ] // {
    version = nodeVersion;
    stdenv.hostPlatform.parsed.cpu.name = builtins.head (builtins.split "-" builtins.currentSystem);
  };
  build = import ../../../nix/plugin-node-dependencies.nix {
    inherit lib nodejs;
    inherit (standIns) runCommand importNpmLock jq;
  };
in
build {
  plugin = h.packages.${name};
  inherit lockFile;
}
