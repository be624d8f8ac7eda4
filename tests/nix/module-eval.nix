# Evaluates modules/ with lib.evalModules against a small stand-in for the
# NixOS options it touches and a stand-in pkgs, so the module's logic can be
# checked without nixpkgs. Returns { failures = [ "..." ]; cases = N; }.
# Run by tests/nix/module-eval.sh; the real NixOS evaluation is
# tests/nixos/eval.nix (on a machine with nixpkgs).
{
  lib,
  # A file holding a made-up token; its text must never reach the store.
  secretFile,
  secretText,
}:
let
  inherit (lib) mkOption types;

  system = "x86_64-linux";

  # Derivations that are never built: only their store paths matter here.
  strict = import ./lib/strict.nix;

  fakeDrv =
    name: attrs:
    derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [
        "-c"
        "exit 1"
      ];
    }
    // attrs;

  mkPlugin =
    pname: extra:
    fakeDrv "scrypted-plugin-${pname}-1.0.0" (
      {
        pluginName = "@scrypted/${pname}";
        version = "1.0.0";
      }
      // extra
    );

  # The real openvino package.nix, with a builder and python that evaluate
  # without nixpkgs.
  fakePython =
    let
      pkgsSet = {
        openvino.version = "2025.2.0";
        pillow.version = "10.3.0";
        opencv4.version = "4.11.0";
        transformers.version = "5.2.0";
        huggingface-hub.version = "0.30.0";
        ptpython.version = "3.0.29";
        wheel.version = "0.45.1";
      };
    in
    {
      pythonVersion = "3.13";
      sitePackages = "lib/python3.13/site-packages";
      stdenv.hostPlatform.uname = {
        system = "Linux";
        processor = "x86_64";
      };
      pkgs = pkgsSet;
      withPackages = f: fakeDrv "python3-3.13-env" { packages = f pkgsSet; };
    };

  # The real Python runtime function, as the builder calls it for a plugin
  # with `python` (tests/nix/python-environment.sh builds it for real).
  pythonPluginEnvironment = import ../../nix/python-plugin-environment.nix {
    python3 = fakePython;
    fetchurl = strict.wrap "fetchurl" (args: fakeDrv "model-file" { inherit (args) url hash; });
    runCommand =
      name: env: script:
      fakeDrv name { inherit env script; };
    unzip = fakeDrv "unzip" { meta.mainProgram = "unzip"; };
  };

  fakeMkScryptedPlugin =
    args:
    let
      finalAttrs = args // {
        finalPackage = package;
      };
      pluginName = "@scrypted/${args.pname}";
      python = pythonPluginEnvironment {
        plugin = package;
        npmName = pluginName;
        inherit (args) version;
        inherit (args.python) requirements;
        models = args.python.models or [ ];
        volumeDirectories = [
          "plugins"
          "plugins/@scrypted"
          "plugins/${pluginName}"
        ];
      };
      package = fakeDrv "scrypted-plugin-${args.pname}-${args.version}" (
        {
          inherit (args) pname version;
          inherit pluginName;
          pluginDependencies = args.pluginDependencies or [ ];
          offline = {
            ready = (args.runtimeNeeds or [ ]) == [ ];
            needs = args.runtimeNeeds or [ ];
          };
        }
        // lib.optionalAttrs (args ? python) {
          inherit (python)
            pythonEnv
            pipTarget
            models
            provision
            ;
        }
        // (args.passthru or (_: { })) finalAttrs
      );
    in
    package;

  openvino = import ../../nix/plugins/openvino/package.nix {
    mkScryptedPlugin = fakeMkScryptedPlugin;
  };

  # A generated Python plugin with two pinned models (python.models).
  detector = fakeMkScryptedPlugin {
    pname = "detector";
    version = "1.0.0";
    python = {
      requirements = [
        {
          name = "Pillow";
          pin = "10.3.0";
        }
      ];
      models =
        map
          (path: {
            inherit path;
            url = "https://huggingface.co/scrypted/plugin-models/resolve/0123456789abcdef0123456789abcdef01234567/${path}";
            size = 7;
            hash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
          })
          [
            "detector/m/m.onnx"
            "detector/m/labels.txt"
            "detector/clip/clip.onnx"
          ];
    };
    runtimeNeeds = [ ];
  };

  # As mkScryptedPlugin makes a plugin with a pinned lock of native npm
  # dependencies (passthru.nodeDependencies and .provision), and one whose
  # dependencies could not be pinned.
  llmDeps = fakeDrv "scrypted-plugin-llm-1.0.0-node-dependencies" {
    directoryName = "n-node-v127-linux-x64";
  };
  nativePlugin =
    pname:
    mkPlugin pname {
      offline = {
        ready = true;
        needs = [ ];
      };
      nodeDependencies = llmDeps;
      provision = {
        directories = [
          "plugins"
          "plugins/@scrypted"
          "plugins/@scrypted/${pname}"
        ];
        symlinks = [
          {
            path = "plugins/@scrypted/${pname}/n-node-v127-linux-x64";
            target = llmDeps;
          }
        ];
        warnings = [ ];
      };
    };
  pluginSet = {
    llm = nativePlugin "llm";
    # A second one, sharing plugins/ and plugins/@scrypted/ with llm.
    llm2 = nativePlugin "llm2";
    eufy = mkPlugin "eufy" {
      offline = {
        ready = false;
        needs = [ "npm install of its native dependencies (eufy-security-client) at every load" ];
      };
    };
    core = mkPlugin "core" { version = "0.3.143"; };
    nvr = mkPlugin "nvr" { };
    onvif = mkPlugin "onvif" { };
    snapshot = mkPlugin "snapshot" { };
    homekit = mkPlugin "homekit" { };
    unifi-protect = mkPlugin "unifi-protect" { pluginDependencies = [ "@scrypted/prebuffer-mixin" ]; };
    # Depends on snapshot only here, to test that dependencies of dependencies count.
    prebuffer-mixin = mkPlugin "prebuffer-mixin" { pluginDependencies = [ "@scrypted/snapshot" ]; };
    doorbird = mkPlugin "doorbird" {
      pluginDependencies = [
        "@scrypted/prebuffer-mixin"
        "@scrypted/not-packaged"
      ];
    };
    objectdetector = mkPlugin "objectdetector" { };
    inherit openvino detector;
    # A community plugin (README.md, "Plugin names"), depending on an official one.
    vityevato--hikvision-doorbell = mkPlugin "hikvision-doorbell" {
      pluginName = "@vityevato/hikvision-doorbell";
      pluginDependencies = [ "@scrypted/prebuffer-mixin" ];
    };
    # What a scope carries besides packages, and what nix/plugins adds.
    callPackage = _: _: { };
    overrideScope = _: { };
    mkScryptedPlugin = fakeMkScryptedPlugin;
    removedPlugins.ring = {
      npmName = "@scrypted/ring";
      version = "0.0.145";
      reason = "no longer on the registry";
      date = "2026-11-30";
    };
  };

  sideloadd = fakeDrv "sideloadd-0.1.0" { meta.mainProgram = "sideloadd"; };

  fakePkgs =
    {
      withScrypted ? true,
      # A cross build: the build machine cannot run the host's programs.
      cross ? false,
    }:
    {
      inherit lib;
      stdenv = {
        buildPlatform.canExecute = _: !cross;
        hostPlatform = { };
      };
      buildPackages.sideloadd = fakeDrv "sideloadd-for-the-build-machine" { };
      coreutils = fakeDrv "coreutils" { };
      formats.json = strict.wrap "formats.json" (_: {
        type = types.anything;
        generate =
          name: value:
          fakeDrv name {
            settings = value;
            text = builtins.toJSON value;
          };
      });
      runCommand =
        name: env: script:
        fakeDrv name { inherit env script; };
      writeShellScript = name: text: fakeDrv name { inherit text; };
      # Only the module's fallback when pkgs has no scrypted (imported without
      # the overlay): the repository's own server package.
      callPackage =
        path: _:
        if lib.hasSuffix "/nix/packages/scrypted/package.nix" (toString path) then
          fakeDrv "scrypted-from-repository" {
            meta.mainProgram = "scrypted-serve";
            fromRepository = true;
          }
        else
          throw "the test pins every package; callPackage ${toString path} was not expected";
    }
    // lib.optionalAttrs withScrypted {
      scrypted = fakeDrv "scrypted-0.144.2" {
        meta.mainProgram = "scrypted-serve";
        plugins = pluginSet;
        minCoreVersion = "0.2.6";
      };
    };

  # The NixOS options the module reads or writes, with NixOS's merge rules
  # where they matter (systemd settings given as lists concatenate).
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      if lib.any (d: lib.isList d.value) defs then
        lib.concatMap (d: lib.toList d.value) defs
      else
        lib.mergeEqualOption loc defs;
  };

  listOfStr = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };

  serviceOptions = {
    options = {
      description = mkOption {
        type = types.str;
        default = "";
      };
      wantedBy = listOfStr;
      requiredBy = listOfStr;
      wants = listOfStr;
      requires = listOfStr;
      requisite = listOfStr;
      before = listOfStr;
      after = listOfStr;
      partOf = listOfStr;
      restartTriggers = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      startLimitIntervalSec = mkOption {
        type = types.nullOr types.int;
        default = null;
      };
      environment = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      serviceConfig = mkOption {
        type = types.attrsOf unitOption;
        default = { };
      };
    };
  };

  nixosStub = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = listOfStr;
      environment.systemPackages = mkOption {
        type = types.listOf types.package;
        default = [ ];
      };
      networking.firewall.allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
      };
      users.users = mkOption {
        type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
        default = { };
      };
      users.groups = mkOption {
        type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
        default = { };
      };
      systemd.tmpfiles.rules = listOfStr;
      systemd.package = mkOption {
        type = types.package;
        default = fakeDrv "systemd" { };
      };
      systemd.services = mkOption {
        type = types.attrsOf (types.submodule serviceOptions);
        default = { };
      };
      systemd.timers = mkOption {
        type = types.attrsOf (types.submodule { freeformType = types.attrsOf types.anything; });
        default = { };
      };
    };
  };

  # Stands for a future nixpkgs `services.scrypted` with the option names of
  # the module proposed in NixOS/nixpkgs#373883.
  upstreamStub =
    { config, ... }:
    let
      cfg = config.services.scrypted;
    in
    {
      options.services.scrypted = {
        enable = mkOption {
          type = types.bool;
          default = false;
        };
        package = mkOption { type = types.package; };
        openFirewall = mkOption {
          type = types.bool;
          default = false;
        };
        installPath = mkOption {
          type = types.str;
          default = "/var/lib/scrypted";
        };
        user = mkOption {
          type = types.str;
          default = "scrypted";
        };
        group = mkOption {
          type = types.str;
          default = "scrypted";
        };
        environmentFile = mkOption {
          type = types.nullOr types.str;
          default = null;
        };
      };
      config = lib.mkIf cfg.enable {
        systemd.services.scrypted = {
          description = "upstream scrypted";
          environment.SCRYPTED_VOLUME = "${cfg.installPath}/volume";
          serviceConfig = {
            ExecStart = lib.getExe cfg.package;
            User = cfg.user;
          }
          // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
        };
        users.users.${cfg.user}.isSystemUser = true;
        networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [
          11080
          10443
        ];
      };
    };

  evalWith =
    {
      settings,
      upstream ? false,
      withScrypted ? true,
      cross ? false,
      extraModules ? [ ],
    }:
    (lib.evalModules {
      modules = [
        nixosStub
        ../../modules
        {
          _module.args.pkgs = fakePkgs { inherit withScrypted cross; };
          mares.automation.scrypted = {
            enable = true;
            sideloadPackage = lib.mkDefault sideloadd;
          }
          // settings;
        }
      ]
      ++ lib.optional upstream upstreamStub
      ++ extraModules;
    }).config;

  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # Everything that ends up in the store or in unit files, as text.
  storeBound =
    config:
    let
      services = config.systemd.services;
      scriptText = services.scrypted-secrets.serviceConfig.ExecStart.text;
      sideload = lib.optionalAttrs (services ? scrypted-sideload) {
        inherit (services.scrypted-sideload) serviceConfig;
        config = (lib.head services.scrypted-sideload.restartTriggers).env.unchecked.text;
      };
    in
    builtins.toJSON {
      inherit scriptText sideload;
      units = lib.mapAttrs (_: s: {
        inherit (s) environment serviceConfig;
      }) services;
      tmpfiles = config.systemd.tmpfiles.rules;
      inherit (config) warnings;
    };

  check =
    name: cond: detail:
    lib.optional (!cond) "${name}: ${detail}";

  hasInfix = lib.hasInfix;

  # --- cases -------------------------------------------------------------

  server = evalWith {
    settings.plugins = [
      "nvr"
      "onvif"
      "snapshot"
    ];
  };
  serverServices = server.systemd.services;
  sideload = serverServices.scrypted-sideload;
  sideloadSc = sideload.serviceConfig;
  configDrv = lib.head sideload.restartTriggers;
  sideloadJson = configDrv.env.unchecked.settings;

  serverCase =
    check "server: no failed assertions" (failedAssertions server == [ ]) (
      builtins.toJSON (failedAssertions server)
    )
    ++ check "server: config keys" (
      lib.attrNames sideloadJson == [
        "adminUsername"
        "autoUpdate"
        "loadTimeoutSecs"
        "plugins"
        "prune"
        "readyTimeoutSecs"
        "server"
        "stateDir"
        "tokenFile"
        "volume"
      ]
    ) (builtins.toJSON (lib.attrNames sideloadJson))
    ++ check "server: config plugins" (
      sideloadJson.plugins == [
        {
          name = "@scrypted/nvr";
          path = "${pluginSet.nvr}";
        }
        {
          name = "@scrypted/onvif";
          path = "${pluginSet.onvif}";
        }
        {
          name = "@scrypted/snapshot";
          path = "${pluginSet.snapshot}";
        }
        {
          name = "@scrypted/core";
          path = "${pluginSet.core}";
        }
      ]
    ) (builtins.toJSON sideloadJson.plugins)
    ++ check "server: config values" (
      sideloadJson.server == "http://127.0.0.1:11080"
      && sideloadJson.tokenFile == "/run/credentials/scrypted-sideload.service/token"
      && sideloadJson.stateDir == "/var/lib/scrypted-sideload"
      && sideloadJson.volume == "/var/lib/scrypted/volume"
      && sideloadJson.readyTimeoutSecs == 600
      && sideloadJson.loadTimeoutSecs == 60
      && sideloadJson.autoUpdate == false
      && sideloadJson.prune == false
    ) (builtins.toJSON sideloadJson)
    ++ check "server: autoUpdate and prune reach sideloadd" (
      let
        set = evalWith {
          settings = {
            plugins = [ "snapshot" ];
            autoUpdate = true;
            prune = true;
          };
        };
        json = (lib.head set.systemd.services.scrypted-sideload.restartTriggers).env.unchecked.settings;
      in
      json.autoUpdate && json.prune
    ) "autoUpdate/prune not passed on"
    ++ check "adminPasswordFile: a credential, never the store" (
      let
        set = evalWith {
          settings = {
            plugins = [ "snapshot" ];
            adminPasswordFile = secretFile;
          };
        };
        unit = set.systemd.services.scrypted-sideload;
        json = (lib.head unit.restartTriggers).env.unchecked.settings;
      in
      json.adminPasswordFile == "/run/credentials/scrypted-sideload.service/admin-password"
      && json.adminUsername == "admin"
      && lib.elem "admin-password:${secretFile}" unit.serviceConfig.LoadCredential
      && !(hasInfix secretText (storeBound set))
      && !(sideloadJson ? adminPasswordFile)
    ) "adminPasswordFile not passed as a credential"
    ++ check "server: a timer repairs drift every 15 minutes" (
      server.systemd.timers.scrypted-sideload.timerConfig.OnUnitInactiveSec or null == "15min"
      && lib.elem "timers.target" server.systemd.timers.scrypted-sideload.wantedBy
    ) (builtins.toJSON (server.systemd.timers.scrypted-sideload or null))
    ++ check "server: config checked at build time" (
      hasInfix "sideloadd check-config" configDrv.script
      && configDrv.env.nativeBuildInputs == [ sideloadd ]
    ) configDrv.script
    ++ check "server: ExecStart" (
      sideloadSc.ExecStart == "${sideloadd}/bin/sideloadd run --config ${configDrv}"
    ) sideloadSc.ExecStart
    ++ check "server: retried without limit, waited for by nothing" (
      sideload.startLimitIntervalSec == 0
      && !(sideloadSc ? RemainAfterExit)
      && !(sideloadSc ? TimeoutStartSec)
      && !(lib.elem "scrypted-sideload.service" (
        serverServices.scrypted.after ++ serverServices.scrypted.requires
      ))
    ) (builtins.toJSON sideloadSc)
    ++ check "server: ordering" (lib.all (l: lib.elem "scrypted.service" l) [
      sideload.after
      sideload.requisite
      sideload.partOf
    ]) "after/requisite/partOf must name scrypted.service"
    ++
      check "server: a timer run never starts a stopped Scrypted (Requisite, not Requires or BindsTo)"
        (
          !(lib.elem "scrypted.service" sideload.requires)
          && !(lib.elem "scrypted.service" (sideload.bindsTo or [ ]))
          && !(lib.elem "scrypted.service" sideload.wants)
        )
        (builtins.toJSON { inherit (sideload) requires wants; })
    ++ check "server: restartTriggers" (
      sideload.restartTriggers == [ configDrv ]
    ) "restart on plugin set change"
    ++ check "server: token credential" (
      sideloadSc.LoadCredential == [ "token:/var/lib/scrypted-secrets/admin-token" ]
    ) (builtins.toJSON sideloadSc.LoadCredential)
    ++ lib.concatLists (
      lib.mapAttrsToList
        (
          k: v:
          check "server: hardening ${k}" (sideloadSc.${k} or null == v) (
            builtins.toJSON (sideloadSc.${k} or null)
          )
        )
        {
          # In the background, so neither boot nor a switch waits for it.
          Type = "exec";
          NotifyAccess = "main";
          Restart = "on-failure";
          RestartSteps = 6;
          RestartMaxDelaySec = "15min";
          RestartPreventExitStatus = 2;
          TimeoutStopSec = 15;
          DynamicUser = true;
          SupplementaryGroups = [ "scrypted" ];
          StateDirectory = "scrypted-sideload";
          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          NoNewPrivileges = true;
          IPAddressDeny = "any";
          IPAddressAllow = "localhost";
          RestrictAddressFamilies = [
            "AF_INET"
            "AF_INET6"
            "AF_UNIX"
          ];
          SystemCallFilter = [
            "@system-service"
            "~@privileged"
            "~@resources"
          ];
          CapabilityBoundingSet = "";
        }
    )
    ++ check "server: scrypted env" (
      serverServices.scrypted.environment.SCRYPTED_INSECURE_PORT == "11080"
      && serverServices.scrypted.environment.SCRYPTED_VOLUME == "/var/lib/scrypted/volume"
      && serverServices.scrypted.serviceConfig.EnvironmentFile == [ "/run/scrypted-secrets/scrypted.env" ]
    ) (builtins.toJSON serverServices.scrypted.environment)
    ++ check "server: own scrypted unit" (
      serverServices.scrypted.serviceConfig.ExecStart == "${(fakePkgs { }).scrypted}/bin/scrypted-serve"
      && server.users.users ? scrypted
    ) "without services.scrypted the module defines the unit and user"
    ++ check "server: secrets before scrypted" (
      lib.elem "scrypted.service" serverServices.scrypted-secrets.requiredBy
      && lib.elem "scrypted-secrets.service" serverServices.scrypted.after
    ) "scrypted-secrets.service must run first"
    ++ check "server: token generated, admin env written" (
      let
        text = serverServices.scrypted-secrets.serviceConfig.ExecStart.text;
      in
      hasInfix "/dev/urandom" text && hasInfix "SCRYPTED_ADMIN_USERNAME=%s\\nSCRYPTED_ADMIN_TOKEN=%s" text
    ) "secrets script"
    ++ check "server: no address bypass" (
      !(hasInfix "SCRYPTED_ADMIN_ADDRESS" (storeBound server))
    ) "SCRYPTED_ADMIN_ADDRESS must never be set"
    ++ check "server: firewall closed by default" (server.networking.firewall.allowedTCPPorts == [ ]) (
      builtins.toJSON server.networking.firewall.allowedTCPPorts
    );

  withToken = evalWith {
    settings = {
      plugins = [ "snapshot" ];
      tokenFile = secretFile;
      openFirewall = true;
    };
  };
  tokenCase =
    check "tokenFile: credential from the user's file" (
      withToken.systemd.services.scrypted-sideload.serviceConfig.LoadCredential
      == [ "token:${secretFile}" ]
    ) "LoadCredential"
    ++ check "tokenFile: no generation" (
      !(hasInfix "/dev/urandom" withToken.systemd.services.scrypted-secrets.serviceConfig.ExecStart.text)
    ) "a user's token must not be replaced"
    ++ check "tokenFile: secret never in store-bound text" (
      !(hasInfix secretText (storeBound withToken))
    ) "the token's value leaked"
    ++ check "openFirewall: only HTTPS" (withToken.networking.firewall.allowedTCPPorts == [ 10443 ]) (
      builtins.toJSON withToken.networking.firewall.allowedTCPPorts
    );

  pathLiteralToken = builtins.tryEval (
    builtins.deepSeq
      (evalWith {
        settings.tokenFile = ./module-eval.nix;
      }).systemd.services.scrypted-sideload.serviceConfig.LoadCredential
      true
  );
  pathLiteralCase = check "tokenFile: a path literal is refused (it would be copied to the store)" (
    !pathLiteralToken.success
  ) "accepted";

  unknown = evalWith {
    settings.plugins = [
      "nvrr"
      "@scrypted/onvf"
      "unifi"
      "ring"
    ];
  };
  unknownMessages = lib.concatStringsSep "\n" (failedAssertions unknown);
  unknownCase =
    check "unknown plugin: assertion fails" (unknownMessages != "") "no assertion"
    ++ check "unknown plugin: names and suggestions" (
      hasInfix ''"nvrr": closest available: "nvr"'' unknownMessages
      && hasInfix ''"unifi": closest available: "unifi-protect"'' unknownMessages
      && hasInfix ''"@scrypted/onvf": closest available: "onvif"'' unknownMessages
    ) unknownMessages
    ++
      check "unknown plugin: a removed one says when and why" (hasInfix removedRing unknownMessages)
        unknownMessages;

  removedRing = ''"ring" was removed from the plugin set on 2026-11-30: no longer on the registry (last pinned 0.0.145)'';

  # Names, npm names of any scope, and packages in place of the set's plugin.
  olderPrebuffer = fakeMkScryptedPlugin {
    pname = "prebuffer-mixin";
    version = "0.9.0";
    hash = "sha512-older";
    # Unlike the set's prebuffer-mixin (which needs snapshot): the package's own
    # dependencies count.
    pluginDependencies = [ "@scrypted/homekit" ];
    passthru = _: { };
  };
  # What `pkgs.scrypted.plugins.onvif.overrideAttrs ...` gives: another store path,
  # still pluginName @scrypted/onvif.
  patchedOnvif = fakeDrv "scrypted-plugin-onvif-1.0.0-patched" { pluginName = "@scrypted/onvif"; };
  mixed = evalWith {
    settings.plugins = [
      "@scrypted/nvr"
      "@vityevato/hikvision-doorbell"
      olderPrebuffer
      patchedOnvif
    ];
  };
  mixedPlugins = pluginEntriesOf mixed;
  duplicateByNpmName = evalWith {
    settings.plugins = [
      "nvr"
      "@scrypted/nvr"
    ];
  };
  duplicateByPackage = evalWith {
    settings.plugins = [
      "prebuffer-mixin"
      olderPrebuffer
    ];
  };
  nameless = evalWith { settings.plugins = [ (fakeDrv "not-a-plugin" { }) ]; };
  namesAndPackagesCase =
    check "plugins: names, npm names and packages" (
      failedAssertions mixed == [ ]
      &&
        mixedPlugins == [
          {
            name = "@scrypted/nvr";
            path = "${pluginSet.nvr}";
          }
          {
            name = "@vityevato/hikvision-doorbell";
            path = "${pluginSet.vityevato--hikvision-doorbell}";
          }
          {
            name = "@scrypted/prebuffer-mixin";
            path = "${olderPrebuffer}";
          }
          {
            name = "@scrypted/onvif";
            path = "${patchedOnvif}";
          }
          {
            name = "@scrypted/homekit";
            path = "${pluginSet.homekit}";
          }
          {
            name = "@scrypted/core";
            path = "${pluginSet.core}";
          }
        ]
    ) (builtins.toJSON (failedAssertions mixed ++ mixedPlugins))
    ++
      assertionSays "plugins: one npm name twice, by name and npm name" duplicateByNpmName
        "more than once (by name, npm name or package: nvr)"
    ++
      assertionSays "plugins: one npm name twice, by name and package" duplicateByPackage
        "package: prebuffer-mixin)"
    ++
      assertionSays "plugins: a package without pluginName" nameless
        "not-a-plugin has no passthru.pluginName";

  assertionSays =
    name: system: text:
    check name (lib.any (hasInfix text) (failedAssertions system)) (
      builtins.toJSON (failedAssertions system)
    );

  pluginEntriesOf =
    system:
    (lib.head system.systemd.services.scrypted-sideload.restartTriggers).env.unchecked.settings.plugins;

  pluginNamesOf =
    system:
    map (p: p.name)
      (lib.head system.systemd.services.scrypted-sideload.restartTriggers).env.unchecked.settings.plugins;

  withDep = evalWith { settings.plugins = [ "openvino" ]; };
  transitive = evalWith {
    settings.plugins = [
      "unifi-protect"
      "snapshot"
    ];
  };
  missingDep = evalWith { settings.plugins = [ "doorbird" ]; };
  dependencyCase =
    check "pluginDependencies: deployed without being declared"
      (
        failedAssertions withDep == [ ]
        &&
          pluginNamesOf withDep == [
            "@scrypted/openvino"
            "@scrypted/objectdetector"
            "@scrypted/core"
          ]
      )
      (
        builtins.toJSON {
          assertions = failedAssertions withDep;
          plugins = pluginNamesOf withDep;
        }
      )
    ++ check "pluginDependencies: followed through dependencies, each deployed once" (
      pluginNamesOf transitive == [
        "@scrypted/unifi-protect"
        "@scrypted/snapshot"
        "@scrypted/prebuffer-mixin"
        "@scrypted/core"
      ]
    ) (builtins.toJSON (pluginNamesOf transitive))
    ++
      check "pluginDependencies: one the set lacks fails with the plugin that needs it"
        (lib.any (hasInfix ''doorbird needs "not-packaged"'') (failedAssertions missingDep))
        (builtins.toJSON (failedAssertions missingDep));

  detection = evalWith {
    settings.plugins = [
      "objectdetector"
      "openvino"
    ];
  };
  pipTargetRule = "L+ /var/lib/scrypted/volume/plugins/@scrypted/openvino/python3.13-Linux-x86_64-20240317 - - - - ${openvino.pipTarget}";
  detectionCase =
    check "server with openvino: no failed assertions" (failedAssertions detection == [ ]) (
      builtins.toJSON (failedAssertions detection)
    )
    ++
      check "server with openvino: python env laid out"
        (lib.elem pipTargetRule detection.systemd.tmpfiles.rules)
        (builtins.toJSON detection.systemd.tmpfiles.rules)
    ++
      check "server with openvino: volume dirs owned by scrypted"
        (lib.elem "d /var/lib/scrypted/volume/plugins/@scrypted 0755 scrypted scrypted - -" detection.systemd.tmpfiles.rules)
        (builtins.toJSON detection.systemd.tmpfiles.rules)
    ++
      check "openvino: version mismatch warned"
        (lib.any (hasInfix "openvino 2025.2.0 (plugin pins 2024.5.0)") detection.warnings)
        (builtins.toJSON detection.warnings)
    ++
      check "openvino: its models, still downloaded, warned"
        (lib.any (hasInfix "model downloads from huggingface.co") detection.warnings)
        (builtins.toJSON detection.warnings)
    ++ check "openvino: pip markers built from the zip" (
      hasInfix "requirements.installed.txt" openvino.pipTarget.script
      && openvino.pipTarget.env.scryptedRequirements == "ptpython\nwheel"
    ) "pipTarget";

  native = evalWith {
    settings.plugins = [
      "llm"
      "eufy"
      "snapshot"
    ];
  };
  nativeSideload = native.systemd.services.scrypted-sideload.serviceConfig;
  nativeCase =
    check "native npm dependencies: linked where Scrypted looks" (
      lib.elem "L+ /var/lib/scrypted/volume/plugins/@scrypted/llm/n-node-v127-linux-x64 - - - - ${llmDeps}" native.systemd.tmpfiles.rules
      && lib.elem "d /var/lib/scrypted/volume/plugins/@scrypted/llm 0755 scrypted scrypted - -" native.systemd.tmpfiles.rules
    ) (builtins.toJSON native.systemd.tmpfiles.rules)
    ++ check "native npm dependencies: laid out again before every sideload run" (
      nativeSideload.ExecStartPre or null == [
        "+${native.systemd.package}/bin/systemd-tmpfiles --create --prefix=/var/lib/scrypted/volume"
      ]
      && !(sideloadSc ? ExecStartPre)
    ) (builtins.toJSON (nativeSideload.ExecStartPre or null))
    ++
      check
        "native npm dependencies: laid out again before Scrypted starts (it loads plugins restored from its database at once)"
        (
          native.systemd.services.scrypted.serviceConfig.ExecStartPre or null == [
            "+${native.systemd.package}/bin/systemd-tmpfiles --create --prefix=/var/lib/scrypted/volume"
          ]
          && !(serverServices.scrypted.serviceConfig ? ExecStartPre)
        )
        (builtins.toJSON (native.systemd.services.scrypted.serviceConfig.ExecStartPre or null))
    ++ check "a plugin that still needs the network: warned, saying what for" (
      lib.any (hasInfix "@scrypted/eufy is not known to start offline: npm install of its native dependencies (eufy-security-client) at every load.") native.warnings
      && !(lib.any (hasInfix "@scrypted/llm is not known") native.warnings)
      && !(lib.any (hasInfix "@scrypted/snapshot is not known") native.warnings)
    ) (builtins.toJSON native.warnings);

  client = evalWith {
    settings = {
      role = "client";
      plugins = [
        "openvino"
        "nvr"
      ];
      cluster = {
        server = "192.168.1.10";
        secretFile = secretFile;
        labels = [ "@scrypted/openvino" ];
      };
      openFirewall = true;
    };
  };
  clientEnv = client.systemd.services.scrypted.environment;
  clientCase =
    check "client: no failed assertions" (failedAssertions client == [ ]) (
      builtins.toJSON (failedAssertions client)
    )
    ++ check "client: no sideload" (
      !(client.systemd.services ? scrypted-sideload)
    ) "scrypted-sideload.service defined"
    ++ check "client: cluster env" (
      clientEnv.SCRYPTED_CLUSTER_MODE == "client"
      && clientEnv.SCRYPTED_CLUSTER_SERVER == "192.168.1.10:10556"
      && clientEnv.SCRYPTED_CLUSTER_LABELS == "@scrypted/openvino"
      && !(clientEnv ? SCRYPTED_CLUSTER_SECRET)
    ) (builtins.toJSON clientEnv)
    ++ check "client: secret through the env file" (
      hasInfix "SCRYPTED_CLUSTER_SECRET=%s" client.systemd.services.scrypted-secrets.serviceConfig.ExecStart.text
      && !(hasInfix "SCRYPTED_ADMIN_TOKEN" client.systemd.services.scrypted-secrets.serviceConfig.ExecStart.text)
    ) "secrets script"
    ++ check "client: openvino provisioned" (lib.elem pipTargetRule client.systemd.tmpfiles.rules) (
      builtins.toJSON client.systemd.tmpfiles.rules
    )
    ++ check "client: warning for nvr" (lib.any (w: hasInfix "nvr is ignored here" w) client.warnings) (
      builtins.toJSON client.warnings
    )
    ++ check "client: secret never in store-bound text" (
      !(hasInfix secretText (storeBound client))
    ) "leaked"
    ++ check "client: nothing opened" (client.networking.firewall.allowedTCPPorts == [ ]) (
      builtins.toJSON client.networking.firewall.allowedTCPPorts
    );

  clientNoSecret = evalWith {
    settings = {
      role = "client";
      cluster.server = "192.168.1.10";
    };
  };
  clientNoSecretCase =
    check "client without secret: assertion"
      (lib.any (hasInfix "cluster.secretFile must be set") (failedAssertions clientNoSecret))
      (builtins.toJSON (failedAssertions clientNoSecret));

  clusterServer = evalWith {
    settings = {
      plugins = [ "snapshot" ];
      openFirewall = true;
      cluster = {
        mode = "server";
        address = "192.168.1.10";
        secretFile = secretFile;
      };
    };
  };
  clusterServerEnv = clusterServer.systemd.services.scrypted.environment;
  clusterServerCase =
    check "cluster server: no failed assertions" (failedAssertions clusterServer == [ ]) (
      builtins.toJSON (failedAssertions clusterServer)
    )
    ++ check "cluster server: env" (
      clusterServerEnv.SCRYPTED_CLUSTER_MODE == "server"
      && clusterServerEnv.SCRYPTED_CLUSTER_ADDRESS == "192.168.1.10"
      && clusterServerEnv.SCRYPTED_CLUSTER_SERVER == "192.168.1.10:10556"
    ) (builtins.toJSON clusterServerEnv)
    ++ check "cluster server: firewall" (
      clusterServer.networking.firewall.allowedTCPPorts == [
        10443
        10556
      ]
    ) (builtins.toJSON clusterServer.networking.firewall.allowedTCPPorts)
    ++ check "cluster server: sideload still there" (
      clusterServer.systemd.services ? scrypted-sideload
    ) "missing";

  upstream = evalWith {
    upstream = true;
    settings = {
      plugins = [ "snapshot" ];
      openFirewall = true;
    };
  };
  upstreamCase =
    check "upstream services.scrypted: used" (
      upstream.systemd.services.scrypted.description == "upstream scrypted"
      && !(upstream.users.users.scrypted ? description)
    ) "the module must not define a second unit or user"
    ++ check "upstream services.scrypted: env file added" (
      upstream.systemd.services.scrypted.serviceConfig.EnvironmentFile
      == [ "/run/scrypted-secrets/scrypted.env" ]
    ) (builtins.toJSON upstream.systemd.services.scrypted.serviceConfig.EnvironmentFile)
    ++ check "upstream services.scrypted: its firewall switch stays off" (
      upstream.networking.firewall.allowedTCPPorts == [ 10443 ]
    ) (builtins.toJSON upstream.networking.firewall.allowedTCPPorts)
    ++ check "upstream services.scrypted: no failed assertions" (failedAssertions upstream == [ ]) (
      builtins.toJSON (failedAssertions upstream)
    );

  # Another module that declares only services.scrypted.enable is not a
  # nixpkgs Scrypted module to build on.
  partialUpstream = evalWith {
    settings.plugins = [ "snapshot" ];
    extraModules = [
      {
        options.services.scrypted.enable = mkOption {
          type = types.bool;
          default = false;
        };
      }
    ];
  };
  upstreamFirewall = evalWith {
    upstream = true;
    settings.plugins = [ "snapshot" ];
    extraModules = [ { services.scrypted.openFirewall = true; } ];
  };
  cross = evalWith {
    cross = true;
    settings.plugins = [ "snapshot" ];
  };
  crossCheck =
    (lib.head cross.systemd.services.scrypted-sideload.restartTriggers).env.nativeBuildInputs;
  timeout =
    t:
    builtins.tryEval (evalWith { settings.readyTimeout = t; }).mares.automation.scrypted.readyTimeout;
  loadTimeout =
    t: builtins.tryEval (evalWith { settings.loadTimeout = t; }).mares.automation.scrypted.loadTimeout;
  configOf =
    settings:
    (lib.head
      (evalWith {
        settings = settings // {
          plugins = [ "snapshot" ];
        };
      }).systemd.services.scrypted-sideload.restartTriggers
    ).env.unchecked.settings;
  reviewCase =
    check "services.scrypted.enable alone: not taken for nixpkgs' module" (
      failedAssertions partialUpstream == [ ]
      && partialUpstream.systemd.services.scrypted.description == "Scrypted home video server"
      && partialUpstream.users.users ? scrypted
    ) (builtins.toJSON (failedAssertions partialUpstream))
    ++ check "upstream openFirewall: warned that it opens plain HTTP" (
      lib.any (hasInfix "services.scrypted.openFirewall opens Scrypted's plain-HTTP port 11080") upstreamFirewall.warnings
      && !(lib.any (hasInfix "services.scrypted.openFirewall") upstream.warnings)
    ) (builtins.toJSON upstreamFirewall.warnings)
    ++ check "cross build: config checked by the build machine's sideloadd" (
      map (d: d.name) crossCheck == [ "sideloadd-for-the-build-machine" ]
    ) (builtins.toJSON (map (d: d.name) crossCheck))
    ++ check "readyTimeout: sideloadd's bounds, 1 to 86400" (
      (timeout 86400).success && !(timeout 86401).success && !(timeout 0).success
    ) "86401 or 0 accepted, or 86400 refused"
    ++ check "loadTimeout: sideloadd's bounds, 1 to 3600, written as loadTimeoutSecs" (
      (loadTimeout 3600).success
      && !(loadTimeout 3601).success
      && !(loadTimeout 0).success
      && (configOf { loadTimeout = 180; }).loadTimeoutSecs == 180
    ) "3601 or 0 accepted, 3600 refused, or the value not passed on";

  noScrypted = evalWith {
    withScrypted = false;
    settings = {
      pluginSet = pluginSet;
      plugins = [ "snapshot" ];
    };
  };
  noScryptedCase =
    check "no pkgs.scrypted (no overlay): the repository's server package" (
      failedAssertions noScrypted == [ ]
      && noScrypted.mares.automation.scrypted.package.fromRepository or false
      && hasInfix "scrypted-from-repository" noScrypted.systemd.services.scrypted.serviceConfig.ExecStart
    ) (builtins.toJSON (failedAssertions noScrypted))
    ++ check "with the overlay: pkgs.scrypted" (
      server.mares.automation.scrypted.package == (fakePkgs { }).scrypted
    ) "the default package is not pkgs.scrypted"
    ++ check "no pkgs.scrypted: a given package works" (
      let
        given = evalWith {
          withScrypted = false;
          settings = {
            pluginSet = pluginSet;
            package = fakeDrv "my-scrypted" { meta.mainProgram = "scrypted-serve"; };
          };
        };
      in
      failedAssertions given == [ ]
    ) "package set by the user still fails";

  withMinCore =
    min: settings:
    evalWith {
      withScrypted = false;
      settings = {
        inherit pluginSet;
        package = fakeDrv "scrypted-0.144.2" {
          meta.mainProgram = "scrypted-serve";
          minCoreVersion = min;
        };
      }
      // settings;
    };
  configPlugins =
    config:
    map (p: p.name)
      (lib.head config.systemd.services.scrypted-sideload.restartTriggers).env.unchecked.settings.plugins;
  coreCase =
    let
      declared = evalWith {
        settings.plugins = [
          "core"
          "nvr"
        ];
      };
      byNpmName = evalWith { settings.plugins = [ "@scrypted/core" ]; };
      off = evalWith {
        settings = {
          plugins = [ "nvr" ];
          provisionCore = false;
        };
      };
      offDeclared = evalWith {
        settings = {
          plugins = [ "core" ];
          provisionCore = false;
        };
      };
      tooOld = withMinCore "0.4.0" { plugins = [ "nvr" ]; };
      newEnough = withMinCore "0.3.143" { plugins = [ "nvr" ]; };
      noCoreInSet = evalWith {
        withScrypted = false;
        settings = {
          pluginSet = removeAttrs pluginSet [ "core" ];
          plugins = [ "nvr" ];
        };
      };
      offWarning = "provisionCore is false and plugins does not list core";
    in
    check "core: provisioned on a server that does not declare it" (
      configPlugins server == [
        "@scrypted/nvr"
        "@scrypted/onvif"
        "@scrypted/snapshot"
        "@scrypted/core"
      ]
      && !(lib.any (hasInfix offWarning) server.warnings)
    ) (builtins.toJSON (configPlugins server))
    ++
      check "core: declared by name or npm name, deployed once"
        (
          configPlugins declared == [
            "@scrypted/core"
            "@scrypted/nvr"
          ]
          && configPlugins byNpmName == [ "@scrypted/core" ]
          && failedAssertions declared == [ ]
        )
        (
          builtins.toJSON [
            (configPlugins declared)
            (configPlugins byNpmName)
          ]
        )
    ++
      check "core: provisionCore = false leaves it out and warns what the server will do"
        (
          configPlugins off == [ "@scrypted/nvr" ]
          && lib.any (hasInfix offWarning) off.warnings
          && lib.any (hasInfix "installs npm's latest @scrypted/core") off.warnings
        )
        (
          builtins.toJSON [
            (configPlugins off)
            off.warnings
          ]
        )
    ++ check "core: provisionCore = false with core declared deploys it, no warning" (
      configPlugins offDeclared == [ "@scrypted/core" ]
      && !(lib.any (hasInfix offWarning) offDeclared.warnings)
    ) (builtins.toJSON offDeclared.warnings)
    ++ check "core: a pinned core below the server's minimum fails evaluation, saying both versions" (
      lib.any (
        m: hasInfix "@scrypted/core 0.3.143 is older than 0.4.0" m && hasInfix "nix run .#update" m
      ) (failedAssertions tooOld)
      && failedAssertions newEnough == [ ]
    ) (builtins.toJSON (failedAssertions tooOld))
    ++
      check "core: a plugin set without core fails evaluation, naming the way out"
        (lib.any (hasInfix "provisionCore = false") (failedAssertions noCoreInSet))
        (builtins.toJSON (failedAssertions noCoreInSet))
    ++ check "core: not on a cluster client" (
      !(client.systemd.services ? scrypted-sideload) && !(lib.any (hasInfix "core") client.warnings)
    ) (builtins.toJSON client.warnings);

  # Two plugins with native dependencies share plugins/ and plugins/@scrypted/.
  twoNative = evalWith {
    settings.plugins = [
      "llm"
      "llm2"
    ];
  };
  tmpfilesCase = check "tmpfiles: each line once, however many plugins share a directory" (
    lib.unique twoNative.systemd.tmpfiles.rules == twoNative.systemd.tmpfiles.rules
    && lib.elem "d /var/lib/scrypted/volume/plugins/@scrypted 0755 scrypted scrypted - -" twoNative.systemd.tmpfiles.rules
    && lib.length (lib.filter (hasInfix "L+ ") twoNative.systemd.tmpfiles.rules) == 2
  ) (builtins.toJSON twoNative.systemd.tmpfiles.rules);

  # Every Python plugin's pip target and models, on a server and on a client.
  modelRules =
    config:
    let
      rules = config.systemd.tmpfiles.rules;
      dir = "/var/lib/scrypted/volume/plugins/@scrypted/detector";
      owned = d: lib.elem "d ${d} 0755 scrypted scrypted - -" rules;
    in
    owned "${dir}/files"
    && owned "${dir}/files/hf"
    && owned "${dir}/files/hf/detector"
    && lib.elem "L+ ${dir}/files/hf/detector/m - - - - ${detector.models."detector/m"}" rules
    && lib.elem "L+ ${dir}/files/hf/detector/clip - - - - ${detector.models."detector/clip"}" rules
    && lib.elem "L+ ${dir}/python3.13-Linux-x86_64-20240317 - - - - ${detector.pipTarget}" rules;
  modelServer = evalWith { settings.plugins = [ "detector" ]; };
  modelClient = evalWith {
    settings = {
      role = "client";
      plugins = [ "detector" ];
      cluster = {
        server = "192.168.1.10";
        inherit secretFile;
      };
    };
  };
  modelCase =
    check "models: laid out on a server, linked where the offline fallback finds them"
      (modelRules modelServer)
      (builtins.toJSON modelServer.systemd.tmpfiles.rules)
    ++ check "models: laid out on a cluster client too" (modelRules modelClient) (
      builtins.toJSON modelClient.systemd.tmpfiles.rules
    )
    ++ check "models: one store directory per model, holding its files" (
      let
        lines = m: lib.filter (l: l != "") (lib.splitString "\n" detector.models.${m}.env.links);
      in
      lib.length (lines "detector/m") == 2
      && lib.length (lines "detector/clip") == 1
      && lib.any (hasInfix "detector/m/labels.txt ") (lines "detector/m")
    ) (builtins.toJSON detector.models."detector/m".env)
    ++ check "models: no warning for a plugin whose versions match" (
      !(lib.any (hasInfix "@scrypted/detector") modelServer.warnings)
    ) (builtins.toJSON modelServer.warnings);

  cases = [
    modelCase
    coreCase
    tmpfilesCase
    serverCase
    tokenCase
    pathLiteralCase
    unknownCase
    namesAndPackagesCase
    dependencyCase
    detectionCase
    nativeCase
    clientCase
    clientNoSecretCase
    clusterServerCase
    upstreamCase
    reviewCase
    noScryptedCase
  ];
in
{
  # The stand-ins for nixpkgs, for tests/nix/lib/stand-ins-check.nix.
  standIns = fakePkgs { };
  report = {
    failures = lib.concatLists cases;
    cases = lib.length cases;
  };
}
