# NixOS module: Scrypted with declared plugins, provisioned offline at boot.
#
# Exported by the flake as `nixosModules.default`; it also works imported by
# path (`imports = [ ./scrypted-nix/modules ];`), which is why its defaults
# reach the plugin set and sideloadd through `pkgs` and relative paths rather
# than through flake outputs.
{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  inherit (lib)
    concatMapStringsSep
    concatStringsSep
    filter
    literalExpression
    mkEnableOption
    mkIf
    mkMerge
    mkOption
    optional
    optionals
    types
    ;

  cfg = config.mares.automation.scrypted;

  # nixpkgs has carried no `services.scrypted` so far (checked up to 2026-11:
  # the module proposed in NixOS/nixpkgs#373883 was not merged). Should a
  # later nixpkgs add it, build on it instead of declaring a second unit, but
  # only if it declares every option used here: another module declaring just
  # `services.scrypted.enable` must not make this one read options that do
  # not exist. Reading `options` only looks at declarations, so it does not
  # recurse.
  upstreamOptions = [
    "enable"
    "package"
    "installPath"
    "user"
    "group"
    "openFirewall"
  ];
  upstream = lib.all (name: options ? services.scrypted.${name}) upstreamOptions;

  stateDir = if upstream then config.services.scrypted.installPath else "/var/lib/scrypted";
  volume = "${stateDir}/volume";
  scryptedUser = if upstream then config.services.scrypted.user else "scrypted";
  scryptedGroup = if upstream then config.services.scrypted.group else "scrypted";

  isServer = cfg.role == "server";
  clusterMode = cfg.cluster.mode;

  # Written by scrypted-secrets.service, read by systemd (as root) before
  # Scrypted starts. Holds SCRYPTED_ADMIN_* and SCRYPTED_CLUSTER_SECRET.
  secretsEnvFile = "/run/scrypted-secrets/scrypted.env";
  generatedTokenFile = "/var/lib/scrypted-secrets/admin-token";
  tokenPath = if cfg.tokenFile != null then cfg.tokenFile else generatedTokenFile;

  # README.md, "Plugin names": @scrypted/<name> is `<name>`, @<scope>/<name> is
  # `<scope>--<name>`, an unscoped <name> is `_--<name>`.
  attrNameOf =
    npmName:
    let
      scoped = builtins.match "@([^/]+)/(.+)" npmName;
    in
    if scoped == null then
      "_--${npmName}"
    else if lib.head scoped == "scrypted" then
      lib.elemAt scoped 1
    else
      "${lib.head scoped}--${lib.elemAt scoped 1}";

  # `plugins` holds names (attribute names such as "nvr", or npm names such as
  # "@scrypted/nvr") and packages, which are deployed as they are under their
  # pluginName, in place of the set's plugin of that name.
  givenPackages = filter (entry: !lib.isString entry && entry ? pluginName) cfg.plugins;
  packagesWithoutName = filter (entry: !lib.isString entry && !(entry ? pluginName)) cfg.plugins;
  entryName =
    entry:
    if !lib.isString entry then
      attrNameOf entry.pluginName
    else if lib.hasPrefix "@" entry then
      attrNameOf entry
    else
      entry;
  declaredEntries = filter (entry: lib.isString entry || entry ? pluginName) cfg.plugins;
  declaredNames = map entryName declaredEntries;

  # Only real packages count as plugins: a scope also carries callPackage,
  # newScope, overrideScope, mkScryptedPlugin and the like.
  availablePlugins =
    lib.filterAttrs (_: lib.isDerivation) cfg.pluginSet
    // lib.listToAttrs (map (pkg: lib.nameValuePair (attrNameOf pkg.pluginName) pkg) givenPackages);
  availableNames = lib.attrNames availablePlugins;

  unknownPlugins = filter (entry: !(availablePlugins ? ${entryName entry})) declaredEntries;

  # @scrypted/core (the web UI) is provisioned on every server unless turned
  # off: a server without it installs npm's latest core at the first request
  # to the web UI (docs/scrypted-api.md, DANGER 2).
  withCore = isServer && cfg.provisionCore && !(lib.elem "core" declaredNames);
  knownPlugins = filter (name: availablePlugins ? ${name}) declaredNames;
  # The oldest core the server accepts, where the server package says
  # (this repository's records MIN_SCRYPTED_CORE_VERSION from its source).
  minCoreVersion = cfg.package.minCoreVersion or null;
  providedCore = if lib.elem "core" resolvedPlugins then availablePlugins.core else null;

  # nixgen's record of the plugins it removed (nix/plugins/removed.json), which
  # this repository's plugin set carries.
  removedPlugins = cfg.pluginSet.removedPlugins or { };

  resolvedPackages = map (name: availablePlugins.${name}) resolvedPlugins;

  # Plugins that bring their own runtime environment (openvino's Python
  # packages). They must also be laid out locally on cluster clients, which
  # run detection but never receive plugins from sideloadd.
  provisioned = filter (pkg: pkg ? provision) resolvedPackages;
  notProvisioned = filter (name: !(availablePlugins.${name} ? provision)) knownPlugins;

  # What plugins still fetch when they start, as nixgen found it
  # (passthru.offline; "unknown: ..." where it could not look): said while
  # evaluating, so an offline host learns it before the plugin fails.
  needingNetwork = filter (pkg: !(pkg.offline.ready or true)) resolvedPackages;

  closestNames =
    name:
    let
      bare = lib.removePrefix "@scrypted/" name;
      scored = map (candidate: {
        inherit candidate;
        distance =
          if lib.hasPrefix bare candidate || lib.hasPrefix candidate bare then
            0
          else
            lib.strings.levenshtein bare candidate;
      }) availableNames;
      sorted = lib.sort (a: b: a.distance < b.distance) scored;
      close = filter (s: s.distance <= lib.max 2 (lib.stringLength bare / 3)) sorted;
    in
    map (s: s.candidate) (lib.take 5 (if close != [ ] then close else sorted));

  unknownPluginMessage =
    let
      describe =
        name:
        let
          removed = removedPlugins.${entryName name} or null;
          lastPinned = if removed.version or null == null then "?" else removed.version;
          closest = concatMapStringsSep ", " (n: "\"${n}\"") (closestNames (entryName name));
        in
        if removed != null then
          "  - \"${name}\" was removed from the plugin set on ${removed.date}: ${removed.reason} (last pinned ${lastPinned}); to keep it, pin it with mkScryptedPlugin (README.md, NixOS module). Closest available: ${closest}"
        else
          "  - \"${name}\": closest available: ${closest}";
    in
    ''
      mares.automation.scrypted.plugins names plugins that the plugin set does not have:
      ${concatMapStringsSep "\n" describe unknownPlugins}
      Use one of the names listed (they are the attribute names of mares.automation.scrypted.pluginSet), or add the plugin to the set with `nix run .#update`.'';

  sideloadFormat = pkgs.formats.json { };

  sideloadSettings = {
    server = "http://127.0.0.1:${toString cfg.httpPort}";
    tokenFile = "/run/credentials/scrypted-sideload.service/token";
    stateDir = "/var/lib/scrypted-sideload";
    inherit volume;
    readyTimeoutSecs = cfg.readyTimeout;
    loadTimeoutSecs = cfg.loadTimeout;
    inherit (cfg) autoUpdate prune adminUsername;
    plugins = map (name: {
      name = availablePlugins.${name}.pluginName or "@scrypted/${name}";
      path = "${availablePlugins.${name}}";
    }) resolvedPlugins;
  }
  // lib.optionalAttrs (cfg.adminPasswordFile != null) {
    adminPasswordFile = "/run/credentials/scrypted-sideload.service/admin-password";
  };

  # The check runs on the build machine: in a cross build the host's
  # sideloadd cannot run there, so the build platform's is taken.
  checkingSideload =
    if pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      cfg.sideloadPackage
    else
      pkgs.buildPackages.sideloadd or (pkgs.buildPackages.callPackage ../nix/packages/sideloadd.nix { });

  # A config that sideloadd rejects fails the system build here, not at boot.
  sideloadConfig =
    pkgs.runCommand "scrypted-sideload.json"
      {
        nativeBuildInputs = [ checkingSideload ];
        unchecked = sideloadFormat.generate "scrypted-sideload-unchecked.json" sideloadSettings;
        preferLocalBuild = true;
      }
      ''
        sideloadd check-config "$unchecked"
        cp "$unchecked" "$out"
      '';

  secretsScript = pkgs.writeShellScript "scrypted-secrets" ''
    set -euo pipefail
    umask 077

    # Values go into an EnvironmentFile: one line each, no quoting games.
    read_secret() {
      local file=$1 what=$2 value
      if [ ! -r "$file" ]; then
        echo "$what: cannot read $file" >&2
        exit 1
      fi
      value=$(${pkgs.coreutils}/bin/head -n 1 -- "$file")
      if ! [[ $value =~ ^[A-Za-z0-9._~+/=-]{16,}$ ]]; then
        echo "$what: $file must hold one line of at least 16 characters from A-Z a-z 0-9 . _ ~ + / = -" >&2
        exit 1
      fi
      printf '%s' "$value"
    }

    env_tmp="$RUNTIME_DIRECTORY/scrypted.env.tmp"
    : >"$env_tmp"
    ${lib.optionalString (isServer && cfg.tokenFile == null) ''
      if [ ! -s ${generatedTokenFile} ]; then
        token=$(${pkgs.coreutils}/bin/od -An -N32 -tx1 /dev/urandom | ${pkgs.coreutils}/bin/tr -d ' \n')
        printf '%s' "$token" >${generatedTokenFile}.tmp
        mv ${generatedTokenFile}.tmp ${generatedTokenFile}
      fi
    ''}
    ${lib.optionalString isServer ''
      token=$(read_secret ${lib.escapeShellArg tokenPath} "admin token")
      printf 'SCRYPTED_ADMIN_USERNAME=%s\nSCRYPTED_ADMIN_TOKEN=%s\n' ${lib.escapeShellArg cfg.adminUsername} "$token" >>"$env_tmp"
    ''}
    ${lib.optionalString (clusterMode != null && cfg.cluster.secretFile != null) ''
      secret=$(read_secret ${lib.escapeShellArg cfg.cluster.secretFile} "cluster secret")
      printf 'SCRYPTED_CLUSTER_SECRET=%s\n' "$secret" >>"$env_tmp"
    ''}
    mv "$env_tmp" ${secretsEnvFile}
  '';

  clusterEnvironment =
    lib.optionalAttrs (clusterMode != null) {
      SCRYPTED_CLUSTER_MODE = clusterMode;
    }
    // lib.optionalAttrs (clusterMode != null && cfg.cluster.labels != [ ]) {
      SCRYPTED_CLUSTER_LABELS = concatStringsSep "," cfg.cluster.labels;
    }
    // lib.optionalAttrs (clusterMode == "client") {
      SCRYPTED_CLUSTER_SERVER = "${cfg.cluster.server}:${toString cfg.cluster.port}";
    }
    # The server derives its listening port from SCRYPTED_CLUSTER_SERVER and
    # accepts it next to SCRYPTED_CLUSTER_ADDRESS only when both name the
    # same host.
    // lib.optionalAttrs (clusterMode == "server" && cfg.cluster.address != null) {
      SCRYPTED_CLUSTER_SERVER = "${cfg.cluster.address}:${toString cfg.cluster.port}";
    }
    // lib.optionalAttrs (clusterMode != null && cfg.cluster.address != null) {
      SCRYPTED_CLUSTER_ADDRESS = cfg.cluster.address;
    }
    // lib.optionalAttrs (clusterMode != null && cfg.cluster.workerName != null) {
      SCRYPTED_CLUSTER_WORKER_NAME = cfg.cluster.workerName;
    };

  # Scrypted creates these itself, but tmpfiles runs first on a fresh system
  # and would otherwise leave root-owned parents it cannot write to. Plugins
  # share parents (plugins/, plugins/@scrypted/): each line once, as
  # systemd-tmpfiles warns about duplicates.
  provisionRules = lib.unique (
    optionals (provisioned != [ ]) [
      "d ${stateDir} 0750 ${scryptedUser} ${scryptedGroup} - -"
      "d ${volume} 0755 ${scryptedUser} ${scryptedGroup} - -"
    ]
    ++ lib.concatMap (
      pkg:
      map (dir: "d ${volume}/${dir} 0755 ${scryptedUser} ${scryptedGroup} - -") (
        pkg.provision.directories or [ ]
      )
      ++ map (link: "L+ ${volume}/${link.path} - - - - ${link.target}") pkg.provision.symlinks
    ) provisioned
  );

  # The prefix is the volume itself, not plugins/: tmpfiles creates a missing
  # parent of an item as root, so after a lost volume only the volume's own
  # rule gives it back to scrypted (else Scrypted cannot open its database).
  layOutEnvironments = "+${config.systemd.package}/bin/systemd-tmpfiles --create --prefix=${volume}";

  # Scrypted installs a plugin's pluginDependencies only when it downloads the
  # plugin from npm itself, never on a sideload, so they are deployed along
  # with the plugins that need them, as installing from Scrypted's UI would.
  dependencyNames = name: map attrNameOf (availablePlugins.${name}.pluginDependencies or [ ]);

  # The declared plugins first, then whatever they need, each once, then core.
  declaredClosure = map (entry: entry.key) (
    builtins.genericClosure {
      startSet = map (key: { inherit key; }) knownPlugins;
      operator =
        { key }: map (dep: { key = dep; }) (filter (dep: availablePlugins ? ${dep}) (dependencyNames key));
    }
  );
  resolvedPlugins =
    declaredClosure
    ++ optional (withCore && availablePlugins ? core && !(lib.elem "core" declaredClosure)) "core";

  unavailableDependencies = lib.concatMap (
    name:
    map (dependency: {
      plugin = name;
      inherit dependency;
    }) (filter (dep: !(availablePlugins ? ${dep})) (dependencyNames name))
  ) resolvedPlugins;

  # A secret file's path is kept as a string: a path literal would be copied
  # into the world-readable store.
  secretPath = types.strMatching "/.+" // {
    description = "absolute path (a string, so it is never copied into the Nix store)";
  };
in
{
  options.mares.automation.scrypted = {
    enable = mkEnableOption "Scrypted with declaratively provisioned plugins";

    package = mkOption {
      type = types.package;
      # The flake's overlay makes pkgs.scrypted this repository's server
      # (nixpkgs has none); imported without the overlay, the module builds the
      # same package itself.
      default = pkgs.scrypted or (pkgs.callPackage ../nix/packages/scrypted/package.nix { });
      defaultText = literalExpression "pkgs.scrypted or (pkgs.callPackage <scrypted-nix/nix/packages/scrypted/package.nix> { })";
      description = ''
        The Scrypted server package; its main program starts the server. The default is
        Scrypted built from source by this repository (`nix build .#scrypted`), or nixpkgs'
        once nixpkgs has one.
      '';
    };

    role = mkOption {
      type = types.enum [
        "server"
        "client"
      ];
      default = "server";
      example = "client";
      description = ''
        `server` runs the Scrypted server and provisions the declared plugins into it with
        sideloadd. `client` runs a Scrypted cluster worker that connects to a server (see
        `cluster`); it receives plugins from the server, so only plugins that need a local
        runtime environment (detection plugins such as `openvino`) are laid out on it.
      '';
    };

    plugins = mkOption {
      type = types.listOf (types.either types.str types.package);
      default = [ ];
      example = [
        "nvr"
        "onvif"
        "openvino"
      ];
      description = ''
        Plugins to install: attribute names of `pluginSet` (`"nvr"` for `@scrypted/nvr`,
        `"apocaliss92--scrypted-frigate-bridge"`), npm names (`"@scrypted/nvr"`), or packages
        (`pkgs.scrypted.plugins.nvr.overrideAttrs ...`, `mkScryptedPlugin { ... }`), which are
        deployed as given under their `pluginName`, also where another plugin depends on
        them. Each npm name at most once. On a server they are deployed into Scrypted at
        every boot where they are not already in place, from the Nix store, without network
        access. A plugin's `pluginDependencies` (unifi-protect needs prebuffer-mixin) are
        deployed with it, as Scrypted's own installer would. Scrypted keeps plugins that are
        installed but not listed here; removing an entry does not uninstall it.
      '';
    };

    provisionCore = mkOption {
      type = types.bool;
      default = true;
      example = false;
      description = ''
        Provision `pluginSet`'s pinned `@scrypted/core` (the web UI, and the RPC most other
        features go through) on the server, whether or not `plugins` lists it. Without core,
        Scrypted installs npm's latest `@scrypted/core` from the network at the first request
        to the web UI: an unpinned version, or nothing at all on an offline host. Turning
        this off warns once; it is for hosts that manage core some other way.
      '';
    };

    pluginSet = mkOption {
      type = types.lazyAttrsOf types.raw;
      default = pkgs.scrypted.plugins or (pkgs.callPackage ../nix/plugins { });
      defaultText = literalExpression "pkgs.scrypted.plugins or (pkgs.callPackage <scrypted-nix/nix/plugins> { })";
      description = "The set of plugin packages that `plugins` names are looked up in.";
    };

    sideloadPackage = mkOption {
      type = types.package;
      default = pkgs.callPackage ../nix/packages/sideloadd.nix { };
      defaultText = literalExpression "pkgs.callPackage <scrypted-nix/nix/packages/sideloadd.nix> { }";
      description = "The sideloadd package that provisions plugins on a server.";
    };

    tokenFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      example = "/run/secrets/scrypted-admin-token";
      description = ''
        File holding the admin token (one line, at least 16 characters from
        `A-Za-z0-9._~+/=-`) that Scrypted accepts as `Authorization: Bearer` and sideloadd
        uses. `null` generates a random token on first start in
        `${generatedTokenFile}` (root only). Either way the token never enters the
        Nix store: systemd reads it as root when it starts the units.
      '';
    };

    adminUsername = mkOption {
      type = types.strMatching "[A-Za-z0-9._-]+";
      default = "admin";
      example = "alice";
      description = ''
        Scrypted user the admin token acts as (`SCRYPTED_ADMIN_USERNAME`). Scrypted creates it
        at boot with a random password if it does not exist; name your existing admin user to
        keep its password, or set `adminPasswordFile` to log into the web UI with it.
      '';
    };

    adminPasswordFile = mkOption {
      type = types.nullOr secretPath;
      default = null;
      example = "/run/secrets/scrypted-admin-password";
      description = ''
        File holding the password of `adminUsername` for the web UI (one line, at least 8
        characters). Scrypted creates that user with a random password nobody knows; with this
        set, sideloadd sets the password over Scrypted's RPC whenever it differs from the file
        (checked with a login at every run, so a changed file takes effect within 15 minutes).
        It needs one installed plugin to reach the RPC through (any declared plugin).
        Read by systemd as root and handed to sideloadd as a credential, never copied into the
        Nix store. `null` leaves the password alone.
      '';
    };

    httpPort = mkOption {
      type = types.port;
      default = 11080;
      description = ''
        Scrypted's plain-HTTP port (`SCRYPTED_INSECURE_PORT`), used by sideloadd over loopback.
        Scrypted takes a bare port number here and listens on every interface (it cannot bind
        this port to 127.0.0.1), so this module never opens it in the firewall.
      '';
    };

    httpsPort = mkOption {
      type = types.port;
      default = 10443;
      description = "Scrypted's HTTPS port (`SCRYPTED_SECURE_PORT`), the one users and apps connect to.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open the HTTPS port (and, for a cluster server, the cluster port) in the firewall.
        The plain-HTTP port stays closed.
      '';
    };

    autoUpdate = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Whether Scrypted may update plugins itself. Once `@scrypted/core` (the web UI) is
        installed, its "Autoupdate Plugins" automation installs npm's latest version over every
        older plugin daily at 03:15 and uninstalls deprecated ones, so pinned plugins would not
        stay pinned. With `false` every sideloadd run turns that automation off, which also stops
        the automatic updates of plugins installed by hand in the web UI. With `true` it is left
        alone; sideloadd then puts the pinned versions back at its next run.
      '';
    };

    prune = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Uninstall plugins that sideloadd installed in an earlier run and that are no longer
        declared in `plugins` (as the web UI's remove does: their settings and devices are gone).
        Plugins sideloadd never installed (installed by hand) are never touched. With `false`,
        removing a name leaves the plugin installed and sideloadd lists it in its log.
      '';
    };

    readyTimeout = mkOption {
      # sideloadd's own bounds (its check-config refuses anything else).
      type = types.ints.between 1 86400;
      default = 600;
      description = "Seconds sideloadd waits for Scrypted to answer before it gives up (at most a day).";
    };

    loadTimeout = mkOption {
      # sideloadd's own bounds (its check-config refuses anything else).
      type = types.ints.between 1 3600;
      default = 60;
      example = 180;
      description = ''
        Seconds the plugins deployed in one sideloadd run may take, together, to load
        (`loadTimeoutSecs`). A plugin still loading after that counts as failed, and an
        upgrade is rolled back to the version before; raise it for plugins that load slowly.
      '';
    };

    cluster = {
      mode = mkOption {
        type = types.nullOr (
          types.enum [
            "server"
            "client"
          ]
        );
        default = if cfg.role == "client" then "client" else null;
        defaultText = literalExpression ''if role == "client" then "client" else null'';
        example = "server";
        description = ''
          Scrypted cluster mode (`SCRYPTED_CLUSTER_MODE`). `null` runs a standalone server.
          A server that cluster clients connect to sets `"server"`; `role = "client"`
          implies `"client"`.
        '';
      };

      server = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.1.10";
        description = "Host name or address of the cluster server, for a client (`SCRYPTED_CLUSTER_SERVER`).";
      };

      port = mkOption {
        type = types.port;
        default = 10556;
        description = "Cluster port the server listens on and clients connect to.";
      };

      address = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "192.168.1.10";
        description = ''
          This node's address in the cluster (`SCRYPTED_CLUSTER_ADDRESS`): an IP address or an
          interface name. Required on a cluster server; a client detects it when unset.
        '';
      };

      secretFile = mkOption {
        type = types.nullOr secretPath;
        default = null;
        example = "/run/secrets/scrypted-cluster-secret";
        description = ''
          File holding the shared cluster secret (`SCRYPTED_CLUSTER_SECRET`; one line, at least
          16 characters from `A-Za-z0-9._~+/=-`). Required in cluster mode; read as root at
          start, never copied into the Nix store.
        '';
      };

      labels = mkOption {
        type = types.listOf (types.strMatching "[^,]+");
        default = [ ];
        example = [
          "@scrypted/openvino"
          "compute"
        ];
        description = ''
          Extra labels of this node (`SCRYPTED_CLUSTER_LABELS`); plugins whose package declares
          `labels.require` (openvino requires `@scrypted/openvino`) run on nodes carrying them.
        '';
      };

      workerName = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "garage-nuc";
        description = "Name of this node in the cluster (`SCRYPTED_CLUSTER_WORKER_NAME`); the host name when unset.";
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    {
      assertions = [
        {
          assertion = unknownPlugins == [ ];
          message = unknownPluginMessage;
        }
        {
          assertion = withCore -> availablePlugins ? core;
          message = "mares.automation.scrypted: pluginSet has no `core` (@scrypted/core, the web UI), which is provisioned on every server so that Scrypted never installs it from npm. Use a plugin set that pins it (this repository's does), or set provisionCore = false.";
        }
        {
          assertion =
            providedCore == null
            || minCoreVersion == null
            || lib.versionAtLeast providedCore.version minCoreVersion;
          message = "mares.automation.scrypted: the pinned @scrypted/core ${providedCore.version or "?"} is older than ${toString minCoreVersion}, the oldest that ${
            cfg.package.name or "the Scrypted package"
          } accepts; with it the server would install npm's latest core at the first request to the web UI. Update the plugin set (`nix run .#update`) or give a newer core in `plugins` (mkScryptedPlugin).";
        }
        {
          assertion = unavailableDependencies == [ ];
          message = "mares.automation.scrypted.plugins: ${
            concatMapStringsSep ", " (
              m: "${m.plugin} needs \"${m.dependency}\", which mares.automation.scrypted.pluginSet does not have"
            ) unavailableDependencies
          }. Add it to the plugin set (`nix run .#update` picks up every Node plugin on npm) or drop the plugin that needs it.";
        }
        {
          assertion = lib.unique declaredNames == declaredNames;
          message = "mares.automation.scrypted.plugins lists a plugin more than once (by name, npm name or package: ${
            concatStringsSep ", " (
              lib.unique (filter (n: lib.count (m: m == n) declaredNames > 1) declaredNames)
            )
          }); list each once.";
        }
        {
          assertion = packagesWithoutName == [ ];
          message = "mares.automation.scrypted.plugins: ${
            concatMapStringsSep ", " (p: p.name or "a package") packagesWithoutName
          } has no passthru.pluginName; build plugins with mkScryptedPlugin.";
        }
        {
          assertion = cfg.role == "client" -> clusterMode == "client";
          message = ''mares.automation.scrypted: role = "client" runs a cluster worker, so cluster.mode must be "client" (or left at its default).'';
        }
        {
          assertion = cfg.role == "server" -> clusterMode != "client";
          message = ''mares.automation.scrypted: cluster.mode = "client" needs role = "client"; a server role runs the server and sideloadd.'';
        }
        {
          assertion = clusterMode != null -> cfg.cluster.secretFile != null;
          message = "mares.automation.scrypted.cluster.secretFile must be set in cluster mode: Scrypted refuses to start a cluster without SCRYPTED_CLUSTER_SECRET.";
        }
        {
          assertion = clusterMode == "client" -> cfg.cluster.server != null;
          message = "mares.automation.scrypted.cluster.server must name the cluster server (host or address) on a cluster client.";
        }
        {
          assertion = clusterMode == "server" -> cfg.cluster.address != null;
          message = "mares.automation.scrypted.cluster.address must be set on a cluster server (its IP address or interface name): Scrypted cannot pick one itself.";
        }
        {
          assertion = cfg.role == "client" -> cfg.tokenFile == null && cfg.adminPasswordFile == null;
          message = "mares.automation.scrypted.tokenFile and adminPasswordFile have no effect on a cluster client (it has no admin API and no sideloadd); unset them.";
        }
        {
          assertion = lib.all (p: !(lib.hasPrefix "/nix/store/" p)) (
            lib.filter (p: p != null) [
              cfg.tokenFile
              cfg.adminPasswordFile
              cfg.cluster.secretFile
            ]
          );
          message = "mares.automation.scrypted: tokenFile, adminPasswordFile and cluster.secretFile must not point into /nix/store, which every local user can read.";
        }
      ];

      warnings =
        optional (upstream && config.services.scrypted.openFirewall)
          "services.scrypted.openFirewall opens Scrypted's plain-HTTP port ${toString cfg.httpPort} to the network, where the admin token would travel in clear. Set it to false and use mares.automation.scrypted.openFirewall, which opens HTTPS only."
        ++ optionals (cfg.role == "client" && notProvisioned != [ ]) [
          "mares.automation.scrypted: on a cluster client only plugins with a local runtime environment are provisioned; ${concatStringsSep ", " notProvisioned} ${
            if lib.length notProvisioned == 1 then "is" else "are"
          } ignored here. Declare such plugins on the server, which hands them to its workers."
        ]
        ++
          optional (isServer && !cfg.provisionCore && !(lib.elem "core" declaredNames))
            "mares.automation.scrypted.provisionCore is false and plugins does not list core: at the first request to the web UI (any /endpoint/@scrypted/core/ URL) Scrypted installs npm's latest @scrypted/core from the network, unpinned, or fails when the host is offline."
        ++ lib.concatMap (pkg: pkg.provision.warnings or [ ]) provisioned
        ++ map (
          pkg:
          "mares.automation.scrypted: ${pkg.pluginName} is not known to start offline: ${concatStringsSep "; " pkg.offline.needs}."
        ) needingNetwork;

      systemd.services.scrypted-secrets = {
        description = "Scrypted admin token and cluster secret";
        before = [ "scrypted.service" ];
        requiredBy = [ "scrypted.service" ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          ExecStart = secretsScript;
          UMask = "0077";
          RuntimeDirectory = "scrypted-secrets";
          RuntimeDirectoryMode = "0700";
          StateDirectory = "scrypted-secrets";
          StateDirectoryMode = "0700";
          PrivateNetwork = true;
          PrivateTmp = true;
          ProtectSystem = "strict";
          ProtectHome = "read-only";
          NoNewPrivileges = true;
        };
      };

      systemd.services.scrypted = {
        requires = [ "scrypted-secrets.service" ];
        after = [ "scrypted-secrets.service" ];
        environment = {
          SCRYPTED_VOLUME = volume;
          SCRYPTED_INSECURE_PORT = toString cfg.httpPort;
          SCRYPTED_SECURE_PORT = toString cfg.httpsPort;
        }
        // clusterEnvironment;
        # A list, so it adds to (not clashes with) an upstream module's own file.
        serviceConfig.EnvironmentFile = [ secretsEnvFile ];
        # The plugins' runtime environments laid out again before Scrypted
        # starts (as root, "+"): after a lost volume Scrypted restores the
        # plugins from its database and loads them at once, before any
        # sideloadd run; without these links they would npm- or pip-install.
        serviceConfig.ExecStartPre = lib.mkIf (provisioned != [ ]) [ layOutEnvironments ];
      };

      systemd.tmpfiles.rules = provisionRules;

      networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall (
        optional isServer cfg.httpsPort ++ optional (clusterMode == "server") cfg.cluster.port
      );
    }

    (
      if upstream then
        {
          # Leave its openFirewall alone: it would also open the plain-HTTP
          # port; ours opens only HTTPS.
          services.scrypted = {
            enable = true;
            inherit (cfg) package;
          };
        }
      else
        {
          systemd.services.scrypted = {
            description = "Scrypted home video server";
            wantedBy = [ "multi-user.target" ];
            wants = [ "network-online.target" ];
            after = [ "network-online.target" ];
            environment.HOME = stateDir;
            serviceConfig = {
              ExecStart = lib.getExe cfg.package;
              Restart = "always";
              RestartSec = 3;
              User = scryptedUser;
              Group = scryptedGroup;
              StateDirectory = "scrypted";
              # Group access lets sideloadd (in the scrypted group) read the volume.
              StateDirectoryMode = "0750";
              WorkingDirectory = stateDir;
              ProtectSystem = "strict";
              ProtectHome = true;
              PrivateTmp = true;
              NoNewPrivileges = true;
              RestrictRealtime = true;
              RestrictSUIDSGID = true;
              LockPersonality = true;
              ProtectKernelModules = true;
              ProtectKernelLogs = true;
              ProtectControlGroups = true;
              # Hardware video decoding and detection accelerators need /dev.
              PrivateDevices = false;
              # Plugins talk to the server over unix sockets and pipes; ONVIF
              # and HomeKit discovery need netlink for interface lists.
              RestrictAddressFamilies = [
                "AF_INET"
                "AF_INET6"
                "AF_NETLINK"
                "AF_UNIX"
              ];
            };
          };

          users.users.scrypted = {
            isSystemUser = true;
            group = "scrypted";
            home = stateDir;
            description = "Scrypted service user";
          };
          users.groups.scrypted = { };
        }
    )

    (mkIf isServer {
      environment.systemPackages = [ cfg.sideloadPackage ];

      # Runs at boot, after every start of Scrypted and at every switch, in
      # the background: Type=exec counts it as started once it runs, so
      # neither multi-user.target nor `nixos-rebuild switch` waits while
      # Scrypted is down (sideloadd then waits up to readyTimeout). Its
      # progress is the unit's status line (sd_notify STATUS=). A failed run
      # is retried with a growing delay; an invalid config (exit 2) is not:
      # `check-config` already refuses those when the system is built.
      # Repairs drift (a plugin Scrypted or a user replaced, a wiped volume)
      # within minutes instead of at the next boot; a run with nothing to do
      # deploys nothing and restarts no plugin.
      systemd.timers.scrypted-sideload = {
        description = "Provision declared Scrypted plugins again, every 15 minutes";
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnBootSec = "15min";
          OnUnitInactiveSec = "15min";
          RandomizedDelaySec = "1min";
        };
      };

      systemd.services.scrypted-sideload = {
        description = "Provision declared Scrypted plugins";
        wantedBy = [
          "multi-user.target"
          "scrypted.service"
        ];
        after = [ "scrypted.service" ];
        # Requisite, not Requires: the timer's start must not bring back a
        # Scrypted an admin stopped; with Scrypted down the start just fails.
        requisite = [ "scrypted.service" ];
        partOf = [ "scrypted.service" ];
        restartTriggers = [ sideloadConfig ];
        startLimitIntervalSec = 0;
        serviceConfig = {
          Type = "exec";
          NotifyAccess = "main";
          ExecStart = "${lib.getExe' cfg.sideloadPackage "sideloadd"} run --config ${sideloadConfig}";
          # Lays the plugins' runtime environments (native npm dependencies,
          # Python packages) out again before each run, as root ("+"): Scrypted
          # deletes a plugin's volume when it is uninstalled, and a plugin
          # deployed again must find them in place before it first loads.
          ExecStartPre = lib.mkIf (provisioned != [ ]) [ layOutEnvironments ];
          Restart = "on-failure";
          RestartSec = "10s";
          RestartSteps = 6;
          RestartMaxDelaySec = "15min";
          RestartPreventExitStatus = 2;
          # SIGTERM ends a run within 10 s, even in the middle of a request.
          TimeoutStopSec = 15;
          LoadCredential = [
            "token:${tokenPath}"
          ]
          ++ optional (cfg.adminPasswordFile != null) "admin-password:${cfg.adminPasswordFile}";
          WatchdogSec = "5min";

          DynamicUser = true;
          SupplementaryGroups = [ scryptedGroup ];
          StateDirectory = "scrypted-sideload";
          StateDirectoryMode = "0700";
          UMask = "0077";

          ProtectSystem = "strict";
          ProtectHome = true;
          PrivateTmp = true;
          PrivateDevices = true;
          PrivateIPC = true;
          NoNewPrivileges = true;
          ProtectHostname = true;
          ProtectClock = true;
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectProc = "invisible";
          ProcSubset = "pid";
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          RemoveIPC = true;
          CapabilityBoundingSet = "";
          AmbientCapabilities = "";
          DevicePolicy = "closed";
          IPAddressDeny = "any";
          IPAddressAllow = "localhost";
          # AF_UNIX: sd_notify and the journal.
          RestrictAddressFamilies = [
            "AF_INET"
            "AF_INET6"
            "AF_UNIX"
          ];
          SystemCallArchitectures = "native";
          SystemCallFilter = [
            "@system-service"
            "~@privileged"
            "~@resources"
          ];
          SystemCallErrorNumber = "EPERM";
        };
      };
    })
  ]);
}
