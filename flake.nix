{
  description = "Every Scrypted plugin as a pinned Nix package, provisioned into a running Scrypted at boot";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixpkgs-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];

      # Every per-system output sees nixpkgs with this flake's overlay, so they all
      # agree on what scrypted, nixgen and sideloadd are.
      forAllSystems =
        f:
        lib.genAttrs systems (
          system:
          f {
            inherit system;
            pkgs = nixpkgs.legacyPackages.${system}.extend self.overlays.default;
          }
        );

      # callPackage decorates any attribute set it returns with override and
      # overrideDerivation; here they would read as two more plugin names.
      pluginSet =
        pkgs:
        removeAttrs (pkgs.callPackage ./nix/plugins { }) [
          "override"
          "overrideDerivation"
        ];

      # Built by `nix flake check` on every system: enough to catch a broken
      # builder or fetch without building all ~60 plugins.
      checkedPlugins = [
        "snapshot"
        "homekit"
        "unifi-protect"
      ];
    in
    {
      overlays.default = final: prev: {
        nixgen = final.callPackage ./nix/packages/nixgen.nix { };
        sideloadd = final.callPackage ./nix/packages/sideloadd.nix { };
        # nixpkgs has no Scrypted server (NixOS/nixpkgs#220494 is open; the
        # packages proposed in #373883 and #404971 were not merged). Should it
        # gain one, that one is used; either way the plugins hang off it.
        scrypted =
          let
            server = prev.scrypted or (final.callPackage ./nix/packages/scrypted/package.nix { });
          in
          server.overrideAttrs (old: {
            passthru = old.passthru or { } // {
              plugins = pluginSet final;
            };
          });
      };

      # The plugin builder, for a plugin or version the plugin set lacks:
      # `scrypted-nix.lib.mkScryptedPlugin pkgs { pname = "nvr"; version = ...; hash = ...; }`.
      # Also in every plugin set (`pkgs.scrypted.plugins.mkScryptedPlugin`).
      lib.mkScryptedPlugin = pkgs: pkgs.callPackage ./nix/mk-scrypted-plugin.nix { };

      # An attribute set importing the path, not the bare path: older Nix (such as
      # 2.8) rejects a path in `nix flake check`, while the import keeps the module
      # system's file locations and de-duplication by path.
      nixosModules.default = {
        imports = [ ./modules ];
      };

      packages = forAllSystems (
        { pkgs, ... }:
        {
          inherit (pkgs) nixgen sideloadd;
          default = pkgs.nixgen;
        }
      );

      # `nix build .#scrypted` is the server, `nix build .#scrypted.plugins.nvr`
      # a plugin.
      legacyPackages = forAllSystems (
        { pkgs, ... }:
        {
          inherit (pkgs) scrypted;
        }
      );

      apps = forAllSystems (
        { pkgs, ... }:
        {
          update = {
            type = "app";
            meta.description = "Regenerate nix/plugins from the npm registry and refresh the Scrypted server pin, in the current checkout";
            program = lib.getExe (
              pkgs.writeShellApplication {
                name = "scrypted-nix-update";
                # Everything the update steps call (nix/update.sh and the server's
                # update.sh).
                runtimeInputs = [
                  pkgs.nixgen
                  pkgs.git
                  pkgs.coreutils
                  pkgs.curl
                  pkgs.jq
                  pkgs.gnutar
                  pkgs.gzip
                  pkgs.gnused
                  pkgs.gnugrep
                  pkgs.nix
                  # npm: nixgen pins plugins' native dependencies with it.
                  pkgs.nodejs
                ];
                text = builtins.readFile ./nix/update.sh;
              }
            );
          };
        }
      );

      checks = forAllSystems (
        { system, pkgs }:
        {
          inherit (pkgs) nixgen sideloadd scrypted;

          formatting =
            pkgs.runCommand "scrypted-nix-formatting"
              {
                nativeBuildInputs = [
                  pkgs.nixfmt
                  pkgs.deadnix
                ];
                src = lib.fileset.toSource {
                  root = ./.;
                  fileset = lib.fileset.fileFilter (file: file.hasExt "nix") ./.;
                };
              }
              ''
                cd "$src"
                find . -name '*.nix' -print0 | xargs -0 nixfmt --check
                deadnix --fail .
                touch "$out"
              '';

          module-eval = import ./tests/nixos/eval.nix { inherit pkgs self; };
        }
        // lib.mapAttrs' (name: lib.nameValuePair "plugin-${name}") (
          lib.getAttrs checkedPlugins pkgs.scrypted.plugins
        )
        # NixOS VM tests need KVM, which CI machines offer on x86_64 only.
        // lib.optionalAttrs (system == "x86_64-linux") {
          vm-sideload = import ./tests/nixos/sideload.nix { inherit pkgs self; };
        }
      );

      # nixfmt itself no longer formats directories (the way `nix fmt` calls a
      # formatter); nixfmt-tree is nixpkgs' treefmt wrapper that runs it on every
      # .nix file of the tree.
      formatter = forAllSystems ({ pkgs, ... }: pkgs.nixfmt-tree);

      devShells = forAllSystems (
        { pkgs, ... }:
        {
          default = pkgs.mkShell {
            packages = [
              pkgs.cargo
              pkgs.rustc
              pkgs.clippy
              pkgs.rustfmt
              pkgs.nixfmt
              pkgs.deadnix
              pkgs.jq
              pkgs.curl
              pkgs.unzip
              pkgs.zip
            ];
          };
        }
      );
    };
}
