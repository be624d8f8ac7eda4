# Stand-ins, built from host tools, for the few parts of nixpkgs that
# nix/mk-scrypted-plugin.nix takes, so that the real builder and the real
# package.nix files can be built with nothing but nix-bin. Everything else (the
# builder, the plugin files, the fetch through <nix/fetchurl.nix>) is the real thing.
{
  # The real nixpkgs lib when the caller has one; otherwise only what the
  # builder reads from lib. A builder that starts using more fails loudly here.
  lib ? {
    platforms.all = [ ];
  },
  system ? builtins.currentSystem,
  hostPath ? "/usr/local/bin:/usr/bin:/bin",
}:

let
  # A bin/ of symlinks to the named host programs, so a derivation only sees the
  # tools it declares (plus the base set every stdenv build has).
  hostTools =
    name: tools:
    derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [
        "-euc"
        ''
          PATH=${hostPath}
          mkdir -p "$out/bin"
          for t in ${toString tools}; do
            p=$(command -v "$t") || { echo "host tool $t not found in ${hostPath}" >&2; exit 1; }
            ln -s "$p" "$out/bin/$t"
          done
        ''
      ];
    };

  # What stdenv puts on PATH before any input: coreutils, findutils, diffutils,
  # sed, grep, awk, tar, gzip, bash. Only those a minimal Debian always has (no
  # xz or bzip2): npm tarballs are gzip.
  baseTools = hostTools "stand-in-stdenv-tools" [
    "awk"
    "basename"
    "bash"
    "cat"
    "chmod"
    "cmp"
    "cp"
    "cut"
    "date"
    "diff"
    "dirname"
    "echo"
    "env"
    "false"
    "find"
    "grep"
    "gzip"
    "head"
    "id"
    "install"
    "ln"
    "ls"
    "mkdir"
    "mktemp"
    "mv"
    "printf"
    "readlink"
    "rm"
    "sed"
    "sh"
    "sort"
    "stat"
    "tail"
    "tar"
    "touch"
    "tr"
    "true"
    "truncate"
    "uname"
    "wc"
    "xargs"
  ];

  mkDerivation =
    fOrAttrs:
    let
      f = if builtins.isFunction fOrAttrs then fOrAttrs else _: fOrAttrs;
      # The finalAttrs fixpoint, as in nixpkgs, finalPackage included.
      attrs = f (attrs // { finalPackage = result; });

      inputs =
        attrs.nativeBuildInputs or [ ]
        ++ (if attrs.doInstallCheck or false then attrs.nativeInstallCheckInputs or [ ] else [ ]);

      drv = derivation (
        removeAttrs attrs [
          "passthru"
          "meta"
          "nativeBuildInputs"
          "nativeInstallCheckInputs"
        ]
        // {
          name = attrs.name or "${attrs.pname}-${attrs.version}";
          inherit system;
          builder = "${baseTools}/bin/bash";
          args = [ ./generic-builder.sh ];
          PATH = builtins.concatStringsSep ":" (map (p: "${p}/bin") (inputs ++ [ baseTools ]));
        }
      );

      result =
        drv
        // attrs.passthru or { }
        // {
          inherit (attrs) meta;
          passthru = attrs.passthru or { };
          # Enough of overrideAttrs for the flake's overlay (prev: or final: prev: forms).
          overrideAttrs =
            g:
            mkDerivation (
              final:
              let
                prev = f final;
                delta = g prev;
              in
              prev // (if builtins.isFunction delta then g final prev else delta)
            );
        };
    in
    result;
  # What nix/packages/scrypted/package.nix takes, enough to evaluate it (its
  # name, metadata and the plugins the overlay hangs off it), never to build it:
  # that needs nixpkgs' buildNpmPackage and the network.
  notBuilt = name: {
    inherit name;
    type = "derivation";
    outPath = throw "stand-in ${name} cannot be built here";
    meta.mainProgram = name;
  };
  # runCommand: the script under bash with the inputs' bin/ and the base tools.
  runCommand =
    name: env: script:
    derivation (
      removeAttrs env [
        "passthru"
        "nativeBuildInputs"
      ]
      // {
        inherit name system;
        builder = "${baseTools}/bin/bash";
        args = [
          "-euo"
          "pipefail"
          "-c"
          script
        ];
        PATH = builtins.concatStringsSep ":" (
          map (p: "${p}/bin") (env.nativeBuildInputs or [ ] ++ [ baseTools ])
        );
      }
    )
    // env.passthru or { };

  # importNpmLock.buildNodeModules by the host's npm: every package of the lock
  # fetched for real (<nix/fetchurl.nix>, by its integrity), put into an empty
  # npm cache, then `npm ci --offline`: a lock that misses a package or pins a
  # wrong hash fails here as it would in nixpkgs.
  buildNodeModules =
    {
      pname,
      version,
      package,
      packageLock,
      npmRebuildFlags ? [ ],
      postConfigure ? "",
      ...
    }:
    let
      paths = builtins.filter (path: path != "" && packageLock.packages.${path} ? resolved) (
        builtins.attrNames packageLock.packages
      );
      fetched = map (
        path:
        import <nix/fetchurl.nix> {
          url = packageLock.packages.${path}.resolved;
          hash = packageLock.packages.${path}.integrity;
        }
      ) paths;
      npm = hostTools "stand-in-npm" [
        "npm"
        "node"
      ];
    in
    runCommand "${pname}-${version}"
      {
        nativeBuildInputs = [ npm ];
        package = builtins.toJSON package;
        packageLock = builtins.toJSON packageLock;
        tarballs = fetched;
        inherit npmRebuildFlags postConfigure;
      }
      ''
        export HOME=$TMPDIR npm_config_cache=$TMPDIR/cache npm_config_update_notifier=false
        mkdir build && cd build
        printf '%s' "$package" >package.json
        printf '%s' "$packageLock" >package-lock.json
        # shellcheck disable=SC2086
        npm cache add $tarballs >/dev/null
        npm ci --offline --ignore-scripts --no-audit --no-fund
        eval "$postConfigure"
        mkdir "$out"
        mv node_modules "$out/"
      '';

  python3 = notBuilt "python3" // {
    pythonVersion = "3.13";
    withPackages = _: notBuilt "python3-env" // { interpreter = "python3-env/bin/python3"; };
  };
in
{
  inherit lib hostTools;
  stdenvNoCC = {
    inherit mkDerivation;
  };
  stdenv = {
    inherit mkDerivation;
    cc.cc.lib = notBuilt "libstdc++";
  };
  buildNpmPackage = args: mkDerivation (removeAttrs args [ "nodejs" ]);
  importNpmLock = {
    __functor = _: _: notBuilt "npm-deps";
    npmConfigHook = notBuilt "npm-config-hook";
    inherit buildNodeModules;
  };
  fetchFromGitHub = args: notBuilt "source" // { inherit (args) owner repo rev; };
  nodejs_22 = notBuilt "node";
  ffmpeg-headless = notBuilt "ffmpeg";
  makeWrapper = notBuilt "make-wrapper";
  autoPatchelfHook = notBuilt "auto-patchelf-hook";
  inherit runCommand;
  inherit python3;
  fetchurl = import <nix/fetchurl.nix>;
  unzip = hostTools "stand-in-unzip" [ "unzip" ];
  jq = hostTools "stand-in-jq" [ "jq" ];
  zip = hostTools "stand-in-zip" [ "zip" ];
}
