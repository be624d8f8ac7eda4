# NixOS VM test: Scrypted with declared plugins, provisioned by sideloadd at
# boot; after a reboot nothing is deployed again; a changed plugin set deploys
# only the new plugin; the plain-HTTP port stays closed to the network.
# For the flake's `checks`: import with { pkgs, self }. Needs KVM and the
# plugin tarballs (fixed-output fetches), so it runs on a real Nix machine.
{ pkgs, self }:
pkgs.testers.runNixOSTest {
  name = "scrypted-sideload";

  nodes = {
    server =
      { lib, ... }:
      {
        imports = [ self.nixosModules.default ];
        mares.automation.scrypted = {
          enable = true;
          plugins = [
            "snapshot"
            "homekit"
          ];
          openFirewall = true;
        };
        # A changed plugin set, switched to at the end of the test.
        specialisation.more.configuration = {
          mares.automation.scrypted.plugins = lib.mkForce [
            "snapshot"
            "homekit"
            "objectdetector"
          ];
        };
        environment.systemPackages = [ pkgs.curl ];
        virtualisation.memorySize = 2048;
      };

    outside = {
      environment.systemPackages = [ pkgs.curl ];
    };
  };

  testScript =
    { nodes, ... }:
    let
      cfg = nodes.server.mares.automation.scrypted;
      pluginPaths = names: builtins.toJSON (pkgs.lib.genAttrs names (name: "${cfg.pluginSet.${name}}"));
      sideloadConfig = pkgs.lib.head nodes.server.systemd.services.scrypted-sideload.restartTriggers;
    in
    ''
      import json

      plugins = json.loads('${pluginPaths cfg.plugins}')
      more = json.loads('${
        pluginPaths [
          "snapshot"
          "homekit"
          "objectdetector"
        ]
      }')
      volume = "/var/lib/scrypted/volume"
      http = "http://127.0.0.1:${toString cfg.httpPort}"


      def deployed_zips(paths):
          """Each plugin's md5-named zip in the volume, as 'inode mtime': a
          redeploy writes it anew."""
          zips = {}
          for name, path in paths.items():
              md5 = server.succeed(f"md5sum {path}/plugin.zip").split()[0]
              zip_file = f"{volume}/plugins/@scrypted/{name}/zip/1-{md5}.zip"
              zips[name] = server.succeed(f"stat -c '%i %Y' {zip_file}").strip()
          return zips


      def sideload_state():
          return server.succeed(
              "find /var/lib/private/scrypted-sideload -type f -exec sha256sum {} + | sort"
          )


      def assert_running(paths, token):
          for name in paths:
              # A missing plugin gets the server's own
              # 404 'Not Found (plugin or device "x" not found)'.
              server.wait_until_succeeds(
                  f"body=$(curl -s -H 'Authorization: Bearer {token}' {http}/endpoint/@scrypted/{name}/)"
                  " && ! grep -q 'plugin or device' <<<\"$body\"",
                  timeout=120,
              )
          server.fail(
              "journalctl -b -u scrypted.service -o cat"
              " | grep -E 'Plugin failed to load|error loading plugin'"
          )


      def sideload_status():
          """sideloadd's last STATUS= line, as systemd keeps it."""
          return server.succeed("systemctl show -P StatusText scrypted-sideload.service").strip()


      def http_status(url, token=None):
          auth = f"-H 'Authorization: Bearer {token}'" if token else ""
          return server.succeed(f"curl -s -o /dev/null -w '%{{http_code}}' {auth} {url}").strip()


      start_all()

      with subtest("plugins are provisioned at first boot"):
          server.wait_for_unit("scrypted-sideload.service")
          token = server.succeed("cat /var/lib/scrypted-secrets/admin-token").strip()
          first_zips = deployed_zips(plugins)
          first_state = sideload_state()
          assert_running(plugins, token)
          print(server.succeed("journalctl -b -u scrypted-sideload.service -o cat"))
          assert sideload_status() == f"{len(plugins)} plugins in place, 0 skipped"

      with subtest("the admin token works, nothing else does"):
          assert http_status(f"{http}/web/component/script/setup") == "401"
          assert http_status(f"{http}/web/component/script/setup", token) == "404"
          environ = server.succeed(
              "tr '\\0' '\\n' </proc/$(systemctl show -P MainPID scrypted.service)/environ"
          )
          assert f"SCRYPTED_ADMIN_TOKEN={token}" in environ.splitlines()
          assert "SCRYPTED_ADMIN_ADDRESS" not in environ
          server.fail(f"grep -qF {token} ${sideloadConfig} /etc/systemd/system/scrypted.service")

      with subtest("only HTTPS is reachable from the network"):
          server.wait_for_open_port(${toString cfg.httpsPort})
          outside.succeed("curl -sk --max-time 10 -o /dev/null https://server:${toString cfg.httpsPort}/login")
          outside.fail("curl -s --max-time 5 -o /dev/null http://server:${toString cfg.httpPort}/login")

      with subtest("a reboot deploys nothing"):
          server.shutdown()
          server.start()
          server.wait_for_unit("scrypted-sideload.service")
          assert server.succeed("cat /var/lib/scrypted-secrets/admin-token").strip() == token
          assert deployed_zips(plugins) == first_zips, "a plugin was deployed again"
          assert sideload_state() == first_state, "sideloadd's state changed"
          assert_running(plugins, token)
          print(server.succeed("journalctl -b -u scrypted-sideload.service -o cat"))
          assert sideload_status() == f"{len(plugins)} plugins in place, {len(plugins)} skipped"

      with subtest("a new plugin in the set is deployed alone"):
          server.succeed(
              "/run/booted-system/specialisation/more/bin/switch-to-configuration test"
          )
          server.wait_for_unit("scrypted-sideload.service")
          zips = deployed_zips(more)
          assert {n: zips[n] for n in plugins} == first_zips, "an unchanged plugin was redeployed"
          assert_running(more, token)
          assert sideload_status() == f"{len(more)} plugins in place, {len(plugins)} skipped"
    '';
}
