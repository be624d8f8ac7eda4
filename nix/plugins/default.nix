# Every Scrypted plugin pinned in this directory, by attribute name (README.md,
# "Plugin names"): `nvr` is @scrypted/nvr, `vityevato--hikvision-doorbell` is
# @vityevato/hikvision-doorbell. Each <name>/package.nix is called with mkScryptedPlugin
# and anything from pkgs, so a hand-maintained plugin could ask for more.
{
  lib,
  newScope,
  callPackage,
  nodejs_22,
  # The server the plugins run in. Its node builds the plugins' native npm
  # dependencies; nixpkgs' Scrypted, should it come, may not say which node it
  # runs, and this repository's runs node 22.
  scrypted ? null,
}:

let
  nodejs = if scrypted != null && scrypted ? nodejs then scrypted.nodejs else nodejs_22;

  mkScryptedPlugin = callPackage ../mk-scrypted-plugin.nix {
    pluginNodeDependencies = callPackage ../plugin-node-dependencies.nix { inherit nodejs; };
    # nixpkgs' python3, the one the server package runs plugins with
    # (nix/packages/scrypted: SCRYPTED_PYTHON_PATH).
    pythonPluginEnvironment = callPackage ../python-plugin-environment.nix { };
  };

  found = lib.packagesFromDirectoryRecursive {
    callPackage = newScope { inherit mkScryptedPlugin; };
    directory = ./.;
  };
in
# This file itself would appear as a plugin named `default`; users pick plugins by
# attribute name, so the set holds plugins and, besides them, only the builder (to pin
# or patch one plugin on a host) and nixgen's record of removed plugins (for the
# NixOS module's messages); neither is a derivation.
removeAttrs found [ "default" ]
// {
  inherit mkScryptedPlugin;
  removedPlugins = if builtins.pathExists ./removed.json then lib.importJSON ./removed.json else { };
}
