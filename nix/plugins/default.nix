# Every Scrypted plugin pinned in this directory, by npm name without the scope:
# `nvr` is @scrypted/nvr. Each <name>/package.nix is called with mkScryptedPlugin
# and anything from pkgs, so hand-maintained plugins (openvino) can ask for more.
{
  lib,
  newScope,
  callPackage,
}:

let
  mkScryptedPlugin = callPackage ../mk-scrypted-plugin.nix { };

  found = lib.packagesFromDirectoryRecursive {
    callPackage = newScope { inherit mkScryptedPlugin; };
    directory = ./.;
  };
in
# This file itself would appear as a plugin named `default`; users pick plugins by
# attribute name, so the set must hold plugins and nothing else.
removeAttrs found [ "default" ]
