# Evaluates the flake's outputs against a stand-in nixpkgs: the real lib, a
# package set made of the stand-ins, with or without a `scrypted` package. Covers
# what can be checked without the full nixpkgs: output structure per system, the
# overlay in both cases, nix/plugins/default.nix and every generated plugin.
# Returns a list of { name, ok, detail } for tests/nix/eval.sh to report.
{
  lib,
  root ? ../../..,
}:

let
  standIns = import ./stand-ins.nix { inherit lib; };
  harness = import ./plugins.nix { inherit root lib; };

  flake = import (root + "/flake.nix");
  lock = lib.importJSON (root + "/flake.lock");

  # Something in the place of nixpkgs' scrypted, with a passthru of its own that
  # the overlay must keep.
  fakeScrypted = standIns.stdenvNoCC.mkDerivation {
    pname = "scrypted";
    version = "0";
    dontFixup = true;
    installPhase = "mkdir $out";
    passthru.fromNixpkgs = true;
  };

  fakePkgs =
    withScrypted:
    lib.makeExtensible (
      self:
      removeAttrs standIns [ "hostTools" ]
      // {
        callPackage = lib.callPackageWith self;
        newScope = extra: lib.callPackageWith (self // extra);
      }
      // lib.optionalAttrs withScrypted { scrypted = fakeScrypted; }
    );

  outputsWith =
    withScrypted:
    let
      nixpkgs = {
        inherit lib;
        legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: fakePkgs withScrypted);
      };
      self = flake.outputs { inherit self nixpkgs; };
    in
    self;

  without = outputsWith false;
  pin = lib.importJSON (root + "/nix/packages/scrypted/pin.json");
  serverName = without.legacyPackages.${x86}.scrypted.name;
  with' = outputsWith true;

  pluginsDir = root + "/nix/plugins";
  # Every directory with a package.nix is a plugin, generated or not.
  pluginDirs = lib.sort lib.lessThan (
    lib.attrNames (
      lib.filterAttrs (
        name: type: type == "directory" && builtins.pathExists (pluginsDir + "/${name}/package.nix")
      ) (builtins.readDir pluginsDir)
    )
  );

  systems = [
    "aarch64-linux"
    "x86_64-linux"
  ];

  check = name: ok: detail: { inherit name ok detail; };
  same =
    name: expected: actual:
    let
      detail = "expected ${builtins.toJSON expected}, got ${builtins.toJSON actual}";
    in
    check name (expected == actual) detail;

  # The generated plugins as a plugin set built them: name, version, npm name.
  describe =
    plugins:
    lib.genAttrs harness.generatedNames (name: {
      inherit (plugins.${name}) name version pluginName;
    });
  # From what each package.nix passes: pname and scope (`"scrypted"` unless given;
  # null for an unscoped package).
  expected = lib.genAttrs harness.generatedNames (
    name:
    let
      pin = harness.pins.${name};
      scope = pin.scope or "scrypted";
      prefix = if scope == null || scope == "scrypted" then "" else "${scope}-";
    in
    {
      name = "scrypted-plugin-${prefix}${pin.pname}-${pin.version}";
      inherit (pin) version;
      pluginName = if scope == null then pin.pname else "@${scope}/${pin.pname}";
    }
  );

  filesetLib = import ./lib-compat.nix lib;

  # buildRustPackage stood in by the identity: what the packages ask it to build.
  rustArgs =
    file:
    (fakePkgs false).callPackage (root + "/nix/packages/${file}") {
      lib = filesetLib;
      # As strict as nixpkgs' (tests/nix/nixpkgs.json).
      rustPlatform.buildRustPackage = (import ./strict.nix).wrap "rustPlatform.buildRustPackage" (
        args: args
      );
    };

  # The files under a directory, relative to it.
  filesUnder =
    dir:
    lib.concatLists (
      lib.mapAttrsToList (
        name: type:
        if type == "directory" then map (f: "${name}/${f}") (filesUnder (dir + "/${name}")) else [ name ]
      ) (builtins.readDir dir)
    );

  rustSummary =
    file:
    let
      args = rustArgs file;
      files = filesUnder args.src;
    in
    {
      inherit (args)
        pname
        version
        cargoBuildFlags
        cargoTestFlags
        ;
      checkFlags = args.checkFlags or [ ];
      inherit (args.meta) mainProgram;
      lockFile = baseNameOf (toString args.cargoLock.lockFile);
      hasWorkspace = builtins.elem "Cargo.toml" files && builtins.elem "Cargo.lock" files;
      hasBothCrates =
        builtins.elem "crates/nixgen/Cargo.toml" files && builtins.elem "crates/sideloadd/Cargo.toml" files;
      hasTemplates = builtins.elem "templates/mk-scrypted-plugin.nix.askama" files;
      # Nothing but cargo's inputs: a Nix or test change must not rebuild the tools.
      onlyCargoInputs = lib.all (
        f:
        lib.elem f [
          "Cargo.toml"
          "Cargo.lock"
        ]
        || lib.hasPrefix "crates/" f
        || lib.hasPrefix "templates/" f
      ) files;
    };
  workspaceVersion = (lib.importTOML (root + "/Cargo.toml")).workspace.package.version;
  rustExpected = name: hasTemplates: {
    pname = name;
    version = workspaceVersion;
    cargoBuildFlags = [
      "-p"
      name
    ];
    cargoTestFlags = [
      "-p"
      name
    ];
    # nixgen's committed-tree tests need nix/, which its build source leaves out.
    checkFlags = lib.optional hasTemplates "--skip=committed::";
    mainProgram = name;
    lockFile = "Cargo.lock";
    hasWorkspace = true;
    hasBothCrates = true;
    inherit hasTemplates;
    onlyCargoInputs = true;
  };

  x86 = "x86_64-linux";
  direct = (fakePkgs false).callPackage (root + "/nix/plugins") { };
  # Besides the plugins ("extras"), the set carries the builder and nixgen's removal record.
  withExtras = lib.sort lib.lessThan (
    pluginDirs
    ++ [
      "mkScryptedPlugin"
      "removedPlugins"
    ]
  );
  withDecoration = lib.sort lib.lessThan (
    withExtras
    ++ [
      "override"
      "overrideDerivation"
    ]
  );
in
[
  (same "flake input is nixpkgs-unstable" "github:NixOS/nixpkgs/nixpkgs-unstable"
    flake.inputs.nixpkgs.url
  )
  (same "flake.lock pins the input flake.nix names" {
    owner = "NixOS";
    repo = "nixpkgs";
    ref = "nixpkgs-unstable";
    type = "github";
  } lock.nodes.nixpkgs.original)
  (same "flake.lock root node" {
    root = "root";
    version = 7;
    rootInputs = {
      nixpkgs = "nixpkgs";
    };
  } (removeAttrs lock [ "nodes" ] // { rootInputs = lock.nodes.root.inputs; }))
  (same "flake.lock locked revision" {
    lastModified = 1771207753;
    narHash = "sha256-b9uG8yN50DRQ6A7JdZBfzq718ryYrlmGgqkRm9OOwCE=";
    owner = "NixOS";
    repo = "nixpkgs";
    rev = "d1c15b7d5806069da59e819999d70e1cec0760bf";
    type = "github";
  } lock.nodes.nixpkgs.locked)
]
++ map (output: same "${output} covers both systems" systems (lib.attrNames without.${output})) [
  "packages"
  "legacyPackages"
  "apps"
  "checks"
  "formatter"
  "devShells"
]
++ [
  (same "packages" [ "default" "nixgen" "sideloadd" ] (lib.attrNames without.packages.${x86}))
  (same "apps" [ "update" ] (lib.attrNames without.apps.${x86}))
  (same "devShells" [ "default" ] (lib.attrNames without.devShells.${x86}))
  (same "checks on x86_64-linux at the lock: the server and the VM test booting it" [
    "formatting"
    "module-eval"
    "nixgen"
    "plugin-homekit"
    "plugin-snapshot"
    "plugin-unifi-protect"
    "scrypted"
    "sideloadd"
    "vm-sideload"
  ] (lib.attrNames without.checks.${x86}))
  (same "checks on x86_64-linux with a nixpkgs that has scrypted" [
    "formatting"
    "module-eval"
    "nixgen"
    "plugin-homekit"
    "plugin-snapshot"
    "plugin-unifi-protect"
    "scrypted"
    "sideloadd"
    "vm-sideload"
  ] (lib.attrNames with'.checks.${x86}))
  (same "checks on aarch64-linux (no VM test: no KVM there)" [
    "formatting"
    "module-eval"
    "nixgen"
    "plugin-homekit"
    "plugin-snapshot"
    "plugin-unifi-protect"
    "scrypted"
    "sideloadd"
  ] (lib.attrNames without.checks.aarch64-linux))
  (check "nixosModules.default imports ./modules" (
    let
      imports = without.nixosModules.default.imports or [ ];
    in
    imports == [ (root + "/modules") ]
  ) (builtins.toJSON (map toString (without.nixosModules.default.imports or [ ]))))

  (same "nix/plugins: plugin directories, extras and callPackage's two" withDecoration (
    lib.attrNames direct
  ))
  (same "legacyPackages.scrypted.plugins: plugin directories and extras" withExtras (
    lib.attrNames without.legacyPackages.${x86}.scrypted.plugins
  ))
  (same "scrypted.plugins from the overlay: plugin directories and extras" withExtras (
    lib.attrNames with'.legacyPackages.${x86}.scrypted.plugins
  ))
  (check "nix/plugins: the extras are the builder and removed.json" (
    lib.isFunction direct.mkScryptedPlugin
    && direct.removedPlugins == lib.importJSON (root + "/nix/plugins/removed.json")
  ) "mkScryptedPlugin or removedPlugins")
  (same "nix/plugins: generated plugins" expected (describe direct))
  (same "lib.mkScryptedPlugin builds what the plugin set builds" direct.nvr.drvPath
    (without.lib.mkScryptedPlugin (fakePkgs false) harness.pins.nvr).drvPath
  )

  # askama reads templates/ when nixgen compiles; sideloadd has no use for them.
  (same "nix/packages/nixgen.nix" (rustExpected "nixgen" true) (rustSummary "nixgen.nix"))
  (same "nix/packages/sideloadd.nix" (rustExpected "sideloadd" false) (rustSummary "sideloadd.nix"))

  (same "overlay: the tools and the server" [ "nixgen" "scrypted" "sideloadd" ] (
    lib.attrNames (without.overlays.default (fakePkgs false) (fakePkgs false))
  ))
  (same "legacyPackages.scrypted at the lock: this repository's server at the pinned commit"
    {
      name = "scrypted-${pin.version}";
      mainProgram = "scrypted-serve";
      inherit (pin) rev;
    }
    (
      let
        server = without.legacyPackages.${x86}.scrypted;
      in
      {
        inherit (server) name;
        inherit (server.meta) mainProgram;
        inherit (server.src) rev;
      }
    )
  )
  (same "checks.scrypted is the server of legacyPackages" serverName
    without.checks.${x86}.scrypted.name
  )
  (same "legacyPackages.scrypted.plugins without nixpkgs' scrypted" expected (
    describe without.legacyPackages.${x86}.scrypted.plugins
  ))

  (same "overlay with nixpkgs' scrypted: scrypted.plugins" expected (
    describe with'.legacyPackages.${x86}.scrypted.plugins
  ))
  (same "overlay with nixpkgs' scrypted: same derivation" fakeScrypted.drvPath
    with'.legacyPackages.${x86}.scrypted.drvPath
  )
  (same "overlay with nixpkgs' scrypted: its passthru kept" true
    with'.legacyPackages.${x86}.scrypted.fromNixpkgs
  )
]
