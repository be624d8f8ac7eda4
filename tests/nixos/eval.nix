# The module in real NixOS evaluations (cheap next to the VM test): a server,
# a cluster client and a system with an unknown plugin name. Evaluates the
# systems (which checks their assertions) without building them, and builds
# only the sideload config (so `sideloadd check-config` runs) and the unit
# files. For the flake's `checks`: import with { pkgs, self }.
{ pkgs, self }:
let
  inherit (pkgs) lib;

  evalSystem =
    settings:
    pkgs.nixos {
      imports = [ self.nixosModules.default ];
      # The least a NixOS system needs to evaluate.
      boot.loader.grub.enable = false;
      fileSystems."/" = {
        device = "/dev/vda";
        fsType = "ext4";
      };
      system.stateVersion = lib.trivial.release;
      mares.automation.scrypted = {
        enable = true;
      }
      // settings;
    };

  server = evalSystem {
    plugins = [
      "snapshot"
      "homekit"
    ];
    openFirewall = true;
  };

  client = evalSystem {
    role = "client";
    plugins = [
      "openvino"
      "snapshot"
    ];
    cluster = {
      server = "192.0.2.1";
      secretFile = "/run/secrets/scrypted-cluster";
    };
  };

  unknown = evalSystem { plugins = [ "snapshott" ]; };

  failed = system: map (a: a.message) (lib.filter (a: !a.assertion) system.config.assertions);

  # Evaluating the top level runs the assertions; its path is discarded so
  # that nothing of the system is built here.
  evaluated = system: builtins.unsafeDiscardStringContext system.config.system.build.toplevel.drvPath;

  sideloadConfig = lib.head server.config.systemd.services.scrypted-sideload.restartTriggers;
  units = system: system.config.systemd.units;
  unitText = system: name: builtins.unsafeDiscardStringContext (units system).${name}.text;

  checks = [
    (lib.assertMsg (failed server == [ ]) "server: ${toString (failed server)}")
    (lib.assertMsg (
      server.config.mares.automation.scrypted.package.name == pkgs.scrypted.name
      && server.config.mares.automation.scrypted.package.meta.mainProgram == "scrypted-serve"
    ) "server: the default package is the flake's Scrypted server")
    (lib.assertMsg (failed client == [ ]) "client: ${toString (failed client)}")
    (lib.assertMsg (lib.any (lib.hasInfix ''"snapshott": closest available: "snapshot"'') (failed unknown)) "unknown plugin: expected an assertion naming \"snapshot\", got: ${toString (failed unknown)}")
    (lib.assertMsg (!(client.config.systemd.services ? scrypted-sideload)) "client: runs no sideloadd")
    (lib.assertMsg (lib.any (lib.hasInfix "/plugins/@scrypted/openvino/python") client.config.systemd.tmpfiles.rules) "client: openvino's Python environment is laid out")
    (lib.assertMsg (lib.any (lib.hasInfix "snapshot is ignored here") client.config.warnings) "client: a warning for the node plugin")
    (lib.assertMsg (
      !(lib.elem 11080 server.config.networking.firewall.allowedTCPPorts)
      && lib.elem 10443 server.config.networking.firewall.allowedTCPPorts
    ) "server: only HTTPS is opened")
    (lib.assertMsg (
      !(lib.hasInfix "SCRYPTED_ADMIN_ADDRESS" (units server)."scrypted.service".text)
    ) "server: no SCRYPTED_ADMIN_ADDRESS")
  ];
in
assert lib.all lib.id checks;
pkgs.runCommand "scrypted-module-eval"
  {
    nativeBuildInputs = [ pkgs.jq ];
    serverSystem = evaluated server;
    clientSystem = evaluated client;
    # Building this runs `sideloadd check-config` on the real config.
    inherit sideloadConfig;
    # Unit texts without their store references: checking them should not
    # build Scrypted.
    sideloadUnit = unitText server "scrypted-sideload.service";
    scryptedUnit = unitText server "scrypted.service";
    clientUnit = unitText client "scrypted.service";
    passAsFile = [
      "sideloadUnit"
      "scryptedUnit"
      "clientUnit"
    ];
  }
  ''
    echo "evaluated $serverSystem and $clientSystem"

    jq -e '
      (keys == ["adminUsername", "autoUpdate", "loadTimeoutSecs", "plugins", "prune", "readyTimeoutSecs", "server", "stateDir", "tokenFile", "volume"])
      and (.loadTimeoutSecs == 60)
      and (.autoUpdate == false) and (.prune == false)
      and ([.plugins[].name] == ["@scrypted/snapshot", "@scrypted/homekit", "@scrypted/core"])
      and (.server == "http://127.0.0.1:11080")
      and (.tokenFile == "/run/credentials/scrypted-sideload.service/token")
    ' "$sideloadConfig"

    # NixOS writes one Key=value line per list element.
    unit=$sideloadUnitPath
    for line in \
      Type=exec Restart=on-failure RestartPreventExitStatus=2 TimeoutStopSec=15 DynamicUser=true SupplementaryGroups=scrypted \
      StateDirectory=scrypted-sideload ProtectSystem=strict ProtectHome=true PrivateTmp=true \
      PrivateDevices=true NoNewPrivileges=true IPAddressDeny=any IPAddressAllow=localhost \
      RestrictAddressFamilies=AF_INET RestrictAddressFamilies=AF_INET6 RestrictAddressFamilies=AF_UNIX \
      'SystemCallFilter=@system-service' 'SystemCallFilter=~@privileged' 'SystemCallFilter=~@resources' \
      CapabilityBoundingSet= \
      'LoadCredential=token:/var/lib/scrypted-secrets/admin-token' \
      After=scrypted.service Requisite=scrypted.service PartOf=scrypted.service; do
      grep -qxF -- "$line" "$unit" || { echo "scrypted-sideload.service lacks: $line" >&2; cat "$unit" >&2; exit 1; }
    done
    grep -q "run --config $sideloadConfig" "$unit"
    # Requires= (or BindsTo=) would make the timer's start bring back a
    # Scrypted that was stopped on purpose.
    if grep -qE '^(Requires|BindsTo|Wants)=.*scrypted\.service' "$unit"; then
      echo "scrypted-sideload.service starts scrypted.service with itself" >&2
      exit 1
    fi
    if grep -q '^RemainAfterExit=true' "$unit"; then
      echo "scrypted-sideload.service must not stay active after a run: the next start would be a no-op" >&2
      exit 1
    fi

    grep -qxF 'EnvironmentFile=/run/scrypted-secrets/scrypted.env' "$scryptedUnitPath"
    grep -qF '"SCRYPTED_INSECURE_PORT=11080"' "$scryptedUnitPath"
    grep -qF '"SCRYPTED_CLUSTER_MODE=client"' "$clientUnitPath"
    grep -qF '"SCRYPTED_CLUSTER_SERVER=192.0.2.1:10556"' "$clientUnitPath"
    if grep -q 'SCRYPTED_ADMIN_ADDRESS\|SCRYPTED_CLUSTER_SECRET=' "$scryptedUnitPath" "$clientUnitPath"; then
      echo "a unit file carries the address bypass or a secret" >&2
      exit 1
    fi

    touch "$out"
  ''
