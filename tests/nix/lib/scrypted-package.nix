# nix/packages/scrypted/package.nix called with stand-ins for the nixpkgs
# builders it takes, which record their arguments. What the recipe asks of
# buildNpmPackage (source, lock, flags, wrapper, metadata) is then checked by
# tests/nix/scrypted-package.sh. Nothing is fetched or built: the lock's
# location is a string that is only forced where `forceLock` is set (the
# source must then already be in the store).
{
  # nixpkgs' lib when the caller has one; otherwise the little the recipe uses.
  lib ? null,
  forceLock ? false,
}:
let
  miniLib = {
    importJSON = file: builtins.fromJSON (builtins.readFile file);
    versions = {
      major = v: builtins.elemAt (builtins.splitVersion v) 0;
      minor = v: builtins.elemAt (builtins.splitVersion v) 1;
    };
    getExe = p: "${p}/bin/${p.meta.mainProgram}";
    assertMsg = pred: msg: pred || throw msg;
    licenses.isc = {
      shortName = "isc";
    };
    sourceTypes = {
      fromSource = "fromSource";
      binaryNativeCode = "binaryNativeCode";
    };
  };
  lib' = if lib == null then miniLib else lib;

  stub = name: {
    inherit name;
    type = "derivation";
    outPath = "/stand-in/${name}";
    meta.mainProgram = name;
  };

  python = stub "python3" // {
    pythonVersion = "3.13";
    withPackages = f: {
      pythonVersion = "3.13";
      interpreter = "/stand-in/python3-env/bin/python3.13";
      packages = f {
        pip = "pip";
        debugpy = "debugpy";
      };
    };
  };

  strict = import ./strict.nix;

  # Recording stand-ins: each takes what nixpkgs takes (tests/nix/nixpkgs.json)
  # and hands back its arguments for the checks.
  standIns = {
    lib = lib';
    stdenv.cc.cc.lib = stub "libstdcxx";
    buildNpmPackage = strict.wrap "buildNpmPackage" (args: args // { builtBy = "buildNpmPackage"; });
    importNpmLock =
      strict.wrap "importNpmLock" (args: {
        importedFrom = if forceLock then args.npmRoot else "<not forced>";
      })
      // {
        npmConfigHook = stub "import-npm-lock-config-hook";
      };
    fetchFromGitHub = strict.wrap "fetchFromGitHub" (args: args // { name = "source"; });
    # The path names what was fetched and by which hash.
    fetchurl = strict.wrap "fetchurl" (args: "/stand-in/fetchurl/${baseNameOf args.url}#${args.hash}");
    srcOnly = strict.wrap "srcOnly" (attrs: "/stand-in/source-of/${attrs.name}");
    nodejs_22 = stub "node" // {
      version = "22.0.0";
    };
    python3 = python;
    ffmpeg-headless = stub "ffmpeg";
    makeWrapper = stub "make-wrapper";
    autoPatchelfHook = stub "auto-patchelf-hook";
  };

  call = extra: import ../../../nix/packages/scrypted/package.nix (standIns // extra);

  package = call { };
  refused = builtins.tryEval (call { plugins = [ "nvr" ]; }).pname;
in
{
  inherit standIns;
  # What the recipe asked for, as JSON for tests/nix/scrypted-package.sh.
  record = {
    inherit (package)
      pname
      version
      sourceRoot
      npmRebuildFlags
      preBuild
      postInstall
      postFixup
      dontAutoPatchelf
      disallowedReferences
      doInstallCheck
      installCheckPhase
      ;
    builtBy = package.builtBy;
    src = {
      inherit (package.src)
        owner
        repo
        rev
        hash
        ;
    };
    npmDeps = package.npmDeps.importedFrom;
    npmConfigHook = package.npmConfigHook.name;
    nodejs = package.nodejs.name;
    nativeBuildInputs = map (p: p.name) package.nativeBuildInputs;
    passthru = {
      nodejs = package.passthru.nodejs.name;
      python = package.passthru.python.interpreter;
      updateScript = map toString package.passthru.updateScript;
      inherit (package.passthru) minCoreVersion;
    };
    meta = package.meta // {
      license = package.meta.license.shortName;
    };
    pluginsRefused = !refused.success;
    pin = lib'.importJSON ../../../nix/packages/scrypted/pin.json;
  };
}
