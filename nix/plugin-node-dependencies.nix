# The directory Scrypted installs a Node plugin's optionalDependencies into
# (docs/provisioning.md, "Native npm dependencies"), built offline from the npm
# lock nixgen pins beside the plugin. Scrypted runs `npm install` there at
# every load unless the directory's package.installed.json lists exactly the
# plugin's optionalDependencies; laid out by the NixOS module, the plugin
# starts with no network.
#
# Called by mkScryptedPlugin for plugins whose package.nix names a lock.
{
  lib,
  runCommand,
  importNpmLock,
  srcOnly,
  jq,
  # The node the Scrypted server runs on (scrypted.passthru.nodejs): native
  # addons are compiled for its ABI, and the directory is named after it.
  nodejs,
}:

{
  # The built plugin (its package.json is the one Scrypted reads).
  plugin,
  # package-lock.json (v3) of the plugin's optionalDependencies.
  lockFile,
}:

let
  lock = lib.importJSON lockFile;
  root = lock.packages."";

  # Scrypted's name for the directory: n-<runtime>-v<ABI>-<platform>-<arch>
  # (process.versions.modules, process.platform, process.arch). The ABI is
  # needed while evaluating (the module lays out a link by this name), so it
  # comes from node's major version; the build checks it against node itself.
  abis = {
    "18" = "108";
    "20" = "115";
    "21" = "120";
    "22" = "127";
    "23" = "131";
    "24" = "137";
    "25" = "141";
  };
  major = lib.versions.major nodejs.version;
  abi =
    if abis ? ${major} then
      abis.${major}
    else
      throw "node ${nodejs.version}: no known module ABI; add it to nix/plugin-node-dependencies.nix";
  # process.arch of node on each CPU.
  arches = {
    x86_64 = "x64";
    aarch64 = "arm64";
  };
  cpu = nodejs.stdenv.hostPlatform.parsed.cpu.name;
  arch =
    if arches ? ${cpu} then
      arches.${cpu}
    else
      throw "scrypted plugin node dependencies: unsupported CPU ${cpu}";
  directoryName = "n-node-v${abi}-linux-${arch}";

  addons = import ./node-addons.nix { inherit srcOnly; } nodejs;

  # importNpmLock.buildNodeModules takes only nodejs, derivationArgs, npmRoot,
  # package and packageLock; everything else goes into derivationArgs
  # (tests/nix/nixpkgs.json records the signature at the lock).
  nodeModules = importNpmLock.buildNodeModules {
    inherit nodejs;
    package = {
      inherit (root) name version;
      dependencies = root.dependencies or { };
    };
    packageLock = lock;
    derivationArgs = {
      # Its default pname is `<lock root name>-node-modules`, whose `@` and `/`
      # mkDerivation turns into `-`; this one says whose modules they are.
      pname = "scrypted-plugin-${plugin.pname}-node-modules";
      inherit (plugin) version;
      # Install scripts would fetch prebuilt binaries; addons are compiled below.
      npmRebuildFlags = [ "--ignore-scripts" ];
      # What `npm install` would have compiled: every addon with a binding.gyp,
      # for this node, from source (prebuilt copies are removed first). Here,
      # not in postConfigure: stdenv runs the postConfigure attribute before
      # the postConfigureHooks array, where importNpmLock's hook creates
      # node_modules; preBuild runs after both.
      preBuild = ''
        ${addons.buildAddon}
        find node_modules -name binding.gyp -not -path '*/node_modules/*/node_modules/*/test/*' -printf '%h\n' |
          while read -r addon; do
            rm -rf "$addon/prebuilds"
            build_addon "$addon"
          done
      '';
      disallowedReferences = [ addons.headers ];
      doInstallCheck = true;
      installCheckPhase = ''
        runHook preInstallCheck
        find "$out/node_modules" -name '*.node' -path '*/build/Release/*' -print0 | ${addons.loadEach}
        runHook postInstallCheck
      '';
    };
  };
in
runCommand "${plugin.name}-node-dependencies"
  {
    nativeBuildInputs = [
      jq
      nodejs
    ];
    inherit lockFile;
    passthru = {
      inherit directoryName nodeModules;
    };
  }
  ''
    mkdir "$out"
    # What Scrypted itself writes there: the plugin's package.json with its
    # optionalDependencies as dependencies, in the plugin's own key order (it
    # compares the JSON text).
    jq '.dependencies = .optionalDependencies | del(.optionalDependencies, .devDependencies, .scripts)' \
      ${plugin}/package.json >"$out/package.json"
    cp "$out/package.json" "$out/package.installed.json"
    ln -s ${nodeModules}/node_modules "$out/node_modules"

    if ! jq -e --slurpfile lock "$lockFile" '.dependencies == ($lock[0].packages[""].dependencies // {})' \
      "$out/package.json" >/dev/null; then
      echo "${plugin.name}: its optionalDependencies differ from the pinned lock; run nix run .#update" >&2
      exit 1
    fi
    if [ "$(node -p process.versions.modules)" != ${abi} ]; then
      echo "node ${nodejs.version} has module ABI $(node -p process.versions.modules), not ${abi}: fix the table in nix/plugin-node-dependencies.nix" >&2
      exit 1
    fi
  ''
