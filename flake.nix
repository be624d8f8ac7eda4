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

      # Also where the pinned nixpkgs has no scrypted package to hang them off.
      pluginsOf = pkgs: pkgs.scrypted.plugins or (pluginSet pkgs);

      # Built by `nix flake check` on every system: enough to catch a broken
      # builder or fetch without building all ~60 plugins.
      checkedPlugins = [
        "snapshot"
        "homekit"
        "unifi-protect"
      ];
    in
    {
      overlays.default =
        final: prev:
        {
          nixgen = final.callPackage ./nix/packages/nixgen.nix { };
          sideloadd = final.callPackage ./nix/packages/sideloadd.nix { };
        }
        # Only where nixpkgs packages Scrypted: defining a bare `scrypted` here would
        # make `pkgs ? scrypted` true without a server to run, which the module reads
        # as "nixpkgs has Scrypted".
        // lib.optionalAttrs (prev ? scrypted) {
          scrypted = prev.scrypted.overrideAttrs (old: {
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

      # `nix build .#scrypted.plugins.nvr` works with or without nixpkgs' scrypted.
      legacyPackages = forAllSystems (
        { pkgs, ... }:
        {
          scrypted = pkgs.scrypted or { plugins = pluginsOf pkgs; };
        }
      );

      apps = forAllSystems (
        { pkgs, ... }:
        {
          update = {
            type = "app";
            meta.description = "Regenerate nix/plugins from the npm registry in the current checkout";
            program = lib.getExe (
              pkgs.writeShellApplication {
                name = "scrypted-nix-update";
                # openvino's update step brings its own logic but not its tools.
                runtimeInputs = [
                  pkgs.nixgen
                  pkgs.git
                  pkgs.coreutils
                  pkgs.curl
                  pkgs.jq
                ];
                text = ''
                  # The flake source in the store is read-only: write to the checkout
                  # the command is run in.
                  root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
                  if [ ! -e "$root/flake.nix" ] || [ ! -d "$root/nix" ]; then
                    echo "update: $root is not a scrypted-nix checkout; run this from inside one" >&2
                    exit 1
                  fi

                  status=0
                  nixgen update --root "$root" "$@" || status=$?

                  # openvino pins a Python environment nixgen knows nothing about. Its
                  # step only runs on a plain update: with arguments (--check,
                  # --dry-run, --only ...) the caller asked nixgen for something narrower.
                  openvino=$root/nix/plugins/openvino/update.sh
                  if [ -e "$openvino" ]; then
                    if [ "$#" -eq 0 ]; then
                      (cd "$root" && bash "$openvino") || status=$?
                    else
                      echo "update: arguments given, skipping $openvino"
                    fi
                  fi

                  exit "$status"
                '';
              }
            );
          };
        }
      );

      checks = forAllSystems (
        { system, pkgs }:
        {
          inherit (pkgs) nixgen sideloadd;

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
          lib.getAttrs checkedPlugins (pluginsOf pkgs)
        )
        # NixOS VM tests need KVM, which CI offers on x86_64 only, and a Scrypted
        # server to boot, which only nixpkgs can provide: where the locked nixpkgs
        # has none, run it with `--override-input nixpkgs` on a revision that does.
        // lib.optionalAttrs (system == "x86_64-linux" && pkgs ? scrypted) {
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
