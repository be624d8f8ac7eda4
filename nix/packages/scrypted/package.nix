# The Scrypted server, built from its public source (koush/scrypted, server/).
# pin.json holds the commit and the hash of its source; ./update.sh refreshes
# it (`nix run .#update` calls it). Plugins are not part of this package: the
# NixOS module provisions them into the running server (docs/provisioning.md).
{
  lib,
  stdenv,
  buildNpmPackage,
  importNpmLock,
  fetchFromGitHub,
  fetchurl,
  srcOnly,
  nodejs_22,
  python3,
  ffmpeg-headless,
  makeWrapper,
  autoPatchelfHook,
  # nixpkgs' proposed `scrypted` (NixOS/nixpkgs#404971) takes a list of plugins
  # to bundle. This one never bundles any; it refuses the argument rather than
  # ignore it, so `scrypted.override { plugins = ...; }` cannot silently do
  # something else than asked.
  plugins ? null,
}:

let
  pin = lib.importJSON ./pin.json;

  # Scrypted's own images run Node 22. Plugins' native npm dependencies must
  # be built for this node's ABI, hence passthru.nodejs.
  nodejs = nodejs_22;

  # What Scrypted's Docker image provides as SCRYPTED_PYTHON_PATH: a python3
  # with pip (Python plugins install their requirements with it) and debugpy
  # (the plugin debugger). Python plugins' pip targets are named after this
  # interpreter's version (nix/plugins/openvino reads passthru.python).
  python = python3.withPackages (ps: [
    ps.pip
    ps.debugpy
  ]);
  pythonTag = lib.versions.major python.pythonVersion + lib.versions.minor python.pythonVersion;

  src = fetchFromGitHub {
    owner = "koush";
    repo = "scrypted";
    inherit (pin) rev hash;
  };

  # importNpmLock reads server/package.json and server/package-lock.json while
  # evaluating. Reading them out of `src` would be import-from-derivation:
  # refused where IFD is off, and it would build a fetcher of the target
  # system during evaluation. The evaluator's own fetch of the same archive
  # with the same hash yields the same store path as `src`, so the source is
  # downloaded once.
  evalSrc = builtins.fetchTarball {
    url = "https://github.com/koush/scrypted/archive/${pin.rev}.tar.gz";
    sha256 = pin.hash;
  };

  # @scrypted/node-pty (the web terminal of @scrypted/core) compiles against
  # node-addon-api, one of its devDependencies, which the server's lock does not
  # carry. Headers only: needed to build, not at run time.
  nodeAddonApi = fetchurl {
    url = "https://registry.npmjs.org/node-addon-api/-/node-addon-api-8.3.1.tgz";
    hash = "sha512-lytcDEdxKjGJPTLEfW4mYMigRezMlyJY8W4wxJK8zE533Jlb8L8dRuObJFWg2P+AuOIxoCgKF+2Oq4d4Zd0OUA==";
  };

  # classic-level and node-pty compiled, and every native module loaded, for
  # the server's node.
  nodeAddons = import ../../node-addons.nix { inherit srcOnly; } nodejs;

  serverDir = "$out/lib/node_modules/@scrypted/server";

  # The native modules compiled in preBuild, relative to the package root.
  addons = [
    "node_modules/classic-level"
    "node_modules/@scrypted/node-pty"
  ];
in
assert lib.assertMsg (plugins == null) ''
  scrypted: this package does not bundle plugins (it was given `plugins`).
  Declare them in mares.automation.scrypted.plugins; the NixOS module provisions
  them into the server from scrypted.plugins.'';
buildNpmPackage {
  pname = "scrypted";
  inherit (pin) version;
  inherit src nodejs;
  sourceRoot = "${src.name}/server";

  npmDeps = importNpmLock { npmRoot = "${evalSrc}/server"; };
  npmConfigHook = importNpmLock.npmConfigHook;

  # Install scripts stay off: @scrypted/ffmpeg-static and the server's own
  # postinstall (a portable Python, through the `py` package) download
  # binaries. The wrapper points the server at nixpkgs' ffmpeg and Python
  # instead, and preBuild compiles the native modules that need it.
  npmRebuildFlags = [ "--ignore-scripts" ];

  nativeBuildInputs = [
    makeWrapper
    autoPatchelfHook
    # node-gyp
    python3
  ];
  # sharp's prebuilt libvips links libstdc++.
  buildInputs = [ stdenv.cc.cc.lib ];

  preBuild = ''
    ${nodeAddons.buildAddon}

    # classic-level is LevelDB, the server's database (the `level` package).
    # Built from source instead of loading the prebuilt binary it ships.
    rm -rf node_modules/classic-level/prebuilds
    build_addon node_modules/classic-level

    # node-pty's install script would first try to download a prebuilt binary.
    pty=node_modules/@scrypted/node-pty
    mkdir -p "$pty/node_modules/node-addon-api"
    tar -xzf ${nodeAddonApi} --strip-components=1 -C "$pty/node_modules/node-addon-api"
    build_addon "$pty"
    rm -rf "$pty/node_modules/node-addon-api" "$pty/prebuilds"
  '';

  postInstall = ''
    # The lock predates npm's `libc` field, so npm installs sharp's musl
    # builds next to the glibc ones; they cannot load here.
    rm -rf ${serverDir}/node_modules/@img/*linuxmusl*

    # Started as upstream's `serve` script starts it: node --expose-gc on
    # dist/scrypted-main.js (the server also turns the flag on itself; plugin
    # workers inherit the server's node flags). buildNpmPackage's own wrapper
    # of bin/scrypted-serve is replaced to carry the environment below.
    rm "$out/bin/scrypted-serve"
    makeWrapper ${lib.getExe nodejs} "$out/bin/scrypted-serve" \
      --add-flags "--expose-gc ${serverDir}/dist/scrypted-main.js" \
      --set-default SCRYPTED_FFMPEG_PATH ${lib.getExe ffmpeg-headless} \
      --set-default SCRYPTED_PYTHON_PATH ${python.interpreter} \
      --set-default SCRYPTED_PYTHON${pythonTag}_PATH ${python.interpreter}
  '';

  # Only sharp ships prebuilt ELF files (its libvips); the rest is built here.
  dontAutoPatchelf = true;
  postFixup = ''
    autoPatchelf ${serverDir}/node_modules/@img
  '';

  disallowedReferences = [ nodeAddons.headers ];

  # sharp's prebuilt modules are loaded too: autoPatchelf may have left a
  # library unresolved.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    for addon in ${toString addons}; do
      printf '%s\0' ${serverDir}/$addon/build/Release/*.node
    done | ${nodeAddons.loadEach}
    find ${serverDir}/node_modules/@img -name '*.node' -print0 | ${nodeAddons.loadEach}
    runHook postInstallCheck
  '';

  passthru = {
    inherit nodejs python;
    # The oldest @scrypted/core this server accepts (MIN_SCRYPTED_CORE_VERSION
    # in its server/src/runtime.ts, recorded by ./update.sh): with an older or
    # no core it installs npm's latest core at the first web UI request.
    inherit (pin) minCoreVersion;
    # Run from the root of a checkout: writes nix/packages/scrypted/pin.json.
    updateScript = [ ./update.sh ];
  };

  meta = {
    description = "Home video integration and automation platform: the server";
    homepage = "https://www.scrypted.app/";
    license = lib.licenses.isc;
    mainProgram = "scrypted-serve";
    platforms = [
      "x86_64-linux"
      "aarch64-linux"
    ];
    sourceProvenance = [
      lib.sourceTypes.fromSource
      # sharp's libvips
      lib.sourceTypes.binaryNativeCode
    ];
  };
}
