# nix/plugin-node-dependencies.nix over the stand-ins: a plugin's dependency
# directory built from its pinned lock with the real fetch and the host's npm
# and node, for tests/nix/node-dependencies.sh. `plugin` is the plugin as the
# plugin set makes it (its generated package.nix through the real builder,
# handed pluginNodeDependencies), so its passthru.nodeDependencies and
# passthru.provision are the ones the NixOS module lays out; `withLock` builds
# the same directory from another lock, for the tests of what must fail.
{
  name,
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
  pluginNodeDependencies = import ../../../nix/plugin-node-dependencies.nix {
    inherit lib nodejs;
    inherit (standIns) runCommand importNpmLock jq;
  };
  builder = import ../../../nix/mk-scrypted-plugin.nix;
  scope = standIns // {
    inherit pluginNodeDependencies;
  };
  mkScryptedPlugin = builder (builtins.intersectAttrs (builtins.functionArgs builder) scope);
  plugin = import ../../../nix/plugins/${name}/package.nix { inherit mkScryptedPlugin; };
in
{
  inherit plugin;
  inherit (plugin) nodeDependencies provision;
  withLock =
    lockFile:
    pluginNodeDependencies {
      inherit plugin lockFile;
    };
}
