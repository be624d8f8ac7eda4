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
  nodejs = standIns.nodejsFrom nodeVersion;
  pluginNodeDependencies = import ../../../nix/plugin-node-dependencies.nix {
    inherit lib nodejs;
    inherit (standIns)
      runCommand
      importNpmLock
      jq
      srcOnly
      ;
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
  # The same directory for a made-up plugin: a package.json naming its
  # optionalDependencies and the lock pinning them (tests/nix/stand-ins.sh
  # serves the packages on loopback).
  forFixture =
    { packageJson, lockFile }:
    pluginNodeDependencies {
      inherit lockFile;
      plugin = standIns.runCommand "scrypted-plugin-fixture-1.0.0" {
        inherit packageJson;
        passthru = {
          pname = "fixture";
          version = "1.0.0";
        };
      } ''mkdir "$out" && cp "$packageJson" "$out/package.json"'';
    };
}
