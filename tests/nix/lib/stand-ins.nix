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
  # A builder script for bash or sh -c. It ends on a builtin: run as the last
  # command, a program such as cp is exec'd in place of the shell, closes its
  # output before it exits, and nix 2.8, seeing the log end, SIGKILLs the
  # process group before the exit: the build "failed due to signal 9".
  script = text: [
    "-euc"
    "${text}\nexit 0\n"
  ];

  # A bin/ of symlinks to the named host programs, so a derivation only sees the
  # tools it declares (plus the base set every stdenv build has).
  hostTools =
    name: tools:
    derivation {
      inherit name system;
      builder = "/bin/sh";
      args = script ''
        PATH=${hostPath}
        mkdir -p "$out/bin"
        for t in ${toString tools}; do
          # The program file, not a shell builtin of the same name
          # (`command -v printf` answers "printf").
          p=
          IFS=:
          for d in $PATH; do
            if [ -x "$d/$t" ] && [ ! -d "$d/$t" ]; then p=$d/$t; break; fi
          done
          unset IFS
          [ -n "$p" ] || { echo "host tool $t not found in ${hostPath}" >&2; exit 1; }
          ln -s "$p" "$out/bin/$t"
        done
      '';
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
    "od"
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

  strict = import ./strict.nix;

  # nixpkgs' mkDerivation passes every name through
  # lib.strings.sanitizeDerivationName: an npm name's `@` and `/` become `-`.
  sanitizeName =
    lib.strings.sanitizeDerivationName or (
      name:
      builtins.concatStringsSep "" (
        map (part: if builtins.isList part then "-" else part) (
          builtins.split "[^[:alnum:]+._?=-]+" (
            builtins.head (builtins.match "[.]*(.*)" (builtins.unsafeDiscardStringContext name))
          )
        )
      )
    );

  # What stdenv (not stdenvNoCC) adds: the C toolchain and its strip hook.
  ccTools = hostTools "stand-in-cc" [
    "ar"
    "as"
    "c++"
    "cc"
    "g++"
    "gcc"
    "ld"
    "make"
    "ranlib"
    "strip"
  ];

  mkDerivationWith =
    extraTools: fOrAttrs:
    let
      f = if builtins.isFunction fOrAttrs then fOrAttrs else _: fOrAttrs;
      # The finalAttrs fixpoint, as in nixpkgs, finalPackage included.
      attrs = f (attrs // { finalPackage = result; });

      inputs =
        attrs.nativeBuildInputs or [ ]
        ++ (if attrs.doInstallCheck or false then attrs.nativeInstallCheckInputs or [ ] else [ ]);

      structured = attrs.__structuredAttrs or false;
      # nixpkgs moves the reference checks into outputChecks under structured
      # attributes, where nix ignores them at the top level.
      referenceChecks = [
        "allowedReferences"
        "allowedRequisites"
        "disallowedReferences"
        "disallowedRequisites"
      ];
      checks = builtins.intersectAttrs (builtins.listToAttrs (
        map (name: {
          inherit name;
          value = null;
        }) referenceChecks
      )) attrs;

      drv = derivation (
        removeAttrs attrs (
          [
            "passthru"
            "meta"
            "nativeBuildInputs"
            "nativeInstallCheckInputs"
          ]
          ++ (if structured then referenceChecks else [ ])
        )
        // (if structured then { outputChecks.out = checks; } else { })
        // {
          name = sanitizeName (attrs.name or "${attrs.pname}-${attrs.version}");
          inherit system;
          builder = "${baseTools}/bin/bash";
          args = [ ./generic-builder.sh ];
          PATH = builtins.concatStringsSep ":" (map (p: "${p}/bin") (inputs ++ extraTools ++ [ baseTools ]));
          # What the C toolchain's setup hook exports.
          STRIP = if extraTools == [ ] then "" else "strip";
          standInInputs = builtins.concatStringsSep " " (map toString inputs);
        }
      );

      result =
        drv
        // attrs.passthru or { }
        // {
          meta = attrs.meta or { };
          passthru = attrs.passthru or { };
          # Enough of overrideAttrs for the flake's overlay (prev: or final: prev: forms).
          overrideAttrs =
            g:
            mkDerivationWith extraTools (
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
  mkDerivation = mkDerivationWith [ ];

  # What a recipe takes but nothing here can build (the server, ffmpeg): enough
  # to evaluate its name, metadata and passthru, never its output.
  # A derivation, so that paths into it evaluate (as `nix flake check` evaluates
  # an app's program), whose build fails saying why.
  notBuilt =
    name:
    derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [
        "-c"
        "echo 'stand-in ${name} cannot be built here (it needs nixpkgs)' >&2; exit 1"
      ];
    }
    // {
      meta.mainProgram = name;
    };

  # runCommand: nixpkgs hands env to stdenvNoCC.mkDerivation and the script
  # as buildCommand, which genericBuild runs instead of the
  # phases.
  runCommand =
    name: env: buildCommand:
    mkDerivationWith [ ] (
      env
      // {
        inherit name buildCommand;
      }
    );

  # nixpkgs' node comes with npm and names the Python its node-gyp uses; the
  # host's node and npm stand in for both nodejs_22 and the default nodejs.
  nodejsFrom =
    version:
    hostTools "stand-in-nodejs" [
      "node"
      "npm"
    ]
    // {
      inherit version;
      passthru.python = hostTools "stand-in-python3" [ "python3" ];
      stdenv.hostPlatform.parsed.cpu.name = builtins.head (builtins.split "-" system);
    };

  # srcOnly nodejs is the node source tree, which node-gyp takes as
  # npm_config_nodedir; the host's installed headers (include/node) are what
  # node-gyp reads from it.
  srcOnly = strict.wrap "srcOnly" (
    attrs:
    derivation {
      name = "${attrs.name or "source"}-source";
      inherit system;
      builder = "${baseTools}/bin/bash";
      args = script ''
        PATH=${baseTools}/bin
        [ -d /usr/include/node ] || { echo "stand-in srcOnly: the host has no node headers in /usr/include/node" >&2; exit 1; }
        mkdir -p "$out/include"
        cp -rL /usr/include/node "$out/include/node"
      '';
    }
  );

  # nixpkgs' fetchurl, by nix's own fetcher: the same download and hash check.
  fetchurl = strict.wrap "fetchurl" (
    args:
    import <nix/fetchurl.nix> {
      inherit (args) url;
      hash = args.hash or args.sha256 or args.sha512;
    }
  );

  # importNpmLock (the functor), as nixpkgs does it: every package of the lock
  # with an http(s) `resolved` fetched by its integrity and rewritten to a
  # `file:` store path, the package.json dependencies pointed at those paths,
  # both written into one directory for the hook.
  importNpmLockSources = strict.wrap "importNpmLock" (
    {
      npmRoot ? null,
      package ? builtins.fromJSON (builtins.readFile (npmRoot + "/package.json")),
      packageLock ? builtins.fromJSON (builtins.readFile (npmRoot + "/package-lock.json")),
      pname ? package.name or "unknown",
      version ? package.version or "0.0.0",
      ...
    }:
    let
      fetched =
        module:
        if (module.resolved or null) != null && builtins.match "https?://.+" module.resolved != null then
          {
            resolved = "file:${
              import <nix/fetchurl.nix> {
                url = module.resolved;
                hash = module.integrity;
              }
            }";
          }
        else
          { };
      lock = packageLock // {
        packages = builtins.mapAttrs (
          _: module:
          removeAttrs module [
            "link"
            "funding"
          ]
          // fetched module
        ) packageLock.packages;
      };
      toLocked = builtins.mapAttrs (name: _: lock.packages."node_modules/${name}".resolved);
      json =
        package
        // (if package ? dependencies then { dependencies = toLocked package.dependencies; } else { })
        // (
          if package ? devDependencies then { devDependencies = toLocked package.devDependencies; } else { }
        );
    in
    runCommand "${package.name or pname}-${version}-sources"
      {
        package = builtins.toJSON json;
        packageLock = builtins.toJSON lock;
      }
      ''
        mkdir "$out"
        printf '%s' "$package" >"$out/package.json"
        printf '%s' "$packageLock" >"$out/package-lock.json"
      ''
  );

  # importNpmLock.npmConfigHook: a setup hook appended to postConfigureHooks
  # that swaps in the rewritten package.json and lock, runs npm install with
  # scripts off, then npm rebuild with npmRebuildFlags. node-gyp is pointed at
  # the headers of the node the hook was made with (nixpkgs' default nodejs),
  # not at the nodejs given to buildNodeModules.
  npmConfigHook =
    let
      defaultNodeHeaders = srcOnly (nodejsFrom "default");
      hook = ''
        standInNpmConfigHook() {
          echo "stand-in npmConfigHook"
          if [ -z "''${npmDeps-}" ]; then
            echo "Error: 'npmDeps' should be set when using npmConfigHook." >&2
            exit 1
          fi
          export HOME=$TMPDIR npm_config_cache=$TMPDIR/npm-cache npm_config_update_notifier=false
          export npm_config_nodedir=${defaultNodeHeaders}
          npm_config_node_gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
          export npm_config_node_gyp
          npm config set offline true
          npm config set progress false
          npm config set fund false
          mv package.json .package.json.orig
          if [ -f package-lock.json ]; then mv package-lock.json .package-lock.json.orig; fi
          cp --no-preserve=mode "$npmDeps/package.json" package.json
          cp --no-preserve=mode "$npmDeps/package-lock.json" package-lock.json
          # shellcheck disable=SC2086
          npm install --ignore-scripts --no-audit $npmInstallFlags $npmFlags
          # shellcheck disable=SC2086
          npm rebuild $npmRebuildFlags $npmFlags
        }
        postConfigureHooks+=(standInNpmConfigHook)
      '';
    in
    derivation {
      name = "npm-config-hook";
      inherit system hook;
      builder = "${baseTools}/bin/bash";
      args = script ''
        PATH=${baseTools}/bin
        mkdir -p "$out/nix-support"
        printf '%s' "$hook" >"$out/nix-support/setup-hook"
      '';
    };

  # importNpmLock.buildNodeModules, with nixpkgs' closed argument set and
  # the attributes it sets around derivationArgs (stdenv.mkDerivation with the
  # C toolchain, structured attributes, the hook, nodejs and its Python).
  buildNodeModules = strict.wrap "importNpmLock.buildNodeModules" (
    {
      nodejs,
      derivationArgs ? { },
      npmRoot ? null,
      package ? builtins.fromJSON (builtins.readFile (npmRoot + "/package.json")),
      packageLock ? builtins.fromJSON (builtins.readFile (npmRoot + "/package-lock.json")),
    }:
    mkDerivationWith [ ccTools ] (
      {
        pname = derivationArgs.pname or "${package.name or "unknown"}-node-modules";
        version = derivationArgs.version or package.version or "0.0.0";
        installPhase = ''
          runHook preInstall
          mkdir $out
          cp package.json $out/
          cp package-lock.json $out/
          [[ -d node_modules ]] && mv node_modules $out/
          runHook postInstall
        '';
        dontUnpack = true;
        npmDeps = importNpmLockSources { inherit npmRoot package packageLock; };
        package = builtins.toJSON package;
        packageLock = builtins.toJSON packageLock;
      }
      // derivationArgs
      // {
        __structuredAttrs = true;
        postPatch = ''
          printf "%s" "$package" > package.json
          printf "%s" "$packageLock" > package-lock.json
        ''
        + derivationArgs.postPatch or "";
        nativeBuildInputs = [
          nodejs
          nodejs.passthru.python
          npmConfigHook
        ]
        ++ derivationArgs.nativeBuildInputs or [ ];
      }
    )
  );

  # Builders of the flake's other outputs (the Rust packages, the update app,
  # the dev shell, the VM test): evaluated, never built here.
  rustPlatform.buildRustPackage = strict.wrap "rustPlatform.buildRustPackage" (
    args: notBuilt "${args.pname}-${args.version}" // { inherit (args) meta; }
  );
  writeShellApplication = strict.wrap "writeShellApplication" (
    args:
    notBuilt args.name
    // {
      meta.mainProgram = args.name;
      inherit (args) text;
      runtimeInputs = args.runtimeInputs or [ ];
    }
  );
  writeShellScript = name: text: notBuilt name // { inherit text; };
  mkShell = strict.wrap "mkShell" (args: notBuilt "shell" // { packages = args.packages or [ ]; });
  testers.runNixOSTest = strict.wrap "testers.runNixOSTest" (
    test:
    notBuilt "vm-test-run-${test.name}"
    // {
      inherit (test) nodes testScript;
    }
  );
  formats.json = strict.wrap "formats.json" (_: {
    type = null;
    generate = name: value: builtins.toFile name (builtins.toJSON value);
  });

  # nixpkgs' python3, as far as nix/python-plugin-environment.nix reads it: a
  # package set whose packages are site-packages directories named after
  # their attribute (`versions`: attribute -> version), and withPackages
  # building one site-packages of links to them. Not an interpreter.
  # `hostSystem` is the platform it says it runs on; it is built here.
  pythonFrom =
    {
      versions,
      hostSystem ? system,
    }:
    let
      sitePackages = "lib/python3.13/site-packages";
      package =
        attr: version:
        derivation {
          name = "python3.13-${attr}-${version}";
          inherit system;
          builder = "${baseTools}/bin/bash";
          args = script ''
            PATH=${baseTools}/bin
            mkdir -p "$out/${sitePackages}/${attr}"
            echo '__version__ = "${version}"' >"$out/${sitePackages}/${attr}/__init__.py"
          '';
        }
        // {
          inherit version;
          pname = attr;
        };
      pkgs = builtins.mapAttrs package versions;
    in
    notBuilt "python3"
    // {
      pythonVersion = "3.13";
      inherit sitePackages pkgs;
      stdenv.hostPlatform = {
        system = hostSystem;
        uname = {
          system = "Linux";
          processor = builtins.head (builtins.split "-" hostSystem);
        };
      };
      withPackages =
        f:
        let
          chosen = f pkgs;
        in
        derivation {
          name = "python3-3.13-env";
          inherit system;
          builder = "${baseTools}/bin/bash";
          args = script ''
            PATH=${baseTools}/bin
            mkdir -p "$out/${sitePackages}"
            for p in ${toString chosen}; do
              # buildEnv takes the same package twice (two requirements, one attribute).
              ln -sfn "$p/${sitePackages}"/* "$out/${sitePackages}/"
            done
          '';
        }
        // {
          interpreter = "python3-env/bin/python3";
          packageNames = map (p: p.pname) chosen;
        };
    };
  python3 = pythonFrom {
    versions = {
      imutils = "0.5.4";
      numpy = "2.3.0";
      onnxruntime = "1.23.0";
      opencv4 = "4.11.0";
      openvino = "2025.2.0";
      pillow = "11.3.0";
      ptpython = "3.0.29";
      transformers = "4.56.0";
      wheel = "0.45.1";
    };
  };
in
{
  inherit
    lib
    hostTools
    nodejsFrom
    pythonFrom
    ;
  # The plugin set's (nix/plugins/default.nix), over the stand-in python3.
  pythonPluginEnvironment = import ../../../nix/python-plugin-environment.nix {
    inherit python3 runCommand fetchurl;
    unzip = hostTools "stand-in-unzip" [ "unzip" ];
  };
  stdenvNoCC = {
    inherit mkDerivation;
  };
  stdenv = {
    mkDerivation = mkDerivationWith [ ccTools ];
    cc.cc.lib = notBuilt "libstdc++";
  };
  buildNpmPackage = strict.wrap "buildNpmPackage" (
    args: mkDerivation (removeAttrs args [ "nodejs" ])
  );
  importNpmLock = importNpmLockSources // {
    inherit npmConfigHook buildNodeModules;
  };
  fetchFromGitHub = strict.wrap "fetchFromGitHub" (
    args: notBuilt "source" // { inherit (args) owner repo rev; }
  );
  nodejs_22 = nodejsFrom "22.0.0";
  nodejs = nodejsFrom "24.0.0";
  ffmpeg-headless = notBuilt "ffmpeg";
  makeWrapper = notBuilt "make-wrapper";
  autoPatchelfHook = notBuilt "auto-patchelf-hook";
  inherit
    runCommand
    python3
    fetchurl
    srcOnly
    rustPlatform
    writeShellApplication
    writeShellScript
    mkShell
    testers
    formats
    ;
  unzip = hostTools "stand-in-unzip" [ "unzip" ];
  jq = hostTools "stand-in-jq" [ "jq" ];
  zip = hostTools "stand-in-zip" [ "zip" ];
}
# Packages the flake's apps, checks, formatter and dev shell name (each exists at
# the lock: tests/nix/nixpkgs.json, "attributes"); evaluated, never built here.
// builtins.listToAttrs (
  map
    (name: {
      inherit name;
      value = notBuilt name;
    })
    [
      "cargo"
      "clippy"
      "coreutils"
      "curl"
      "deadnix"
      "git"
      "gnugrep"
      "gnused"
      "gnutar"
      "gzip"
      "nix"
      "nixfmt"
      "rustc"
      "rustfmt"
    ]
)
// {
  nixfmt-tree = notBuilt "nixfmt-tree" // {
    meta.mainProgram = "treefmt";
  };
}
