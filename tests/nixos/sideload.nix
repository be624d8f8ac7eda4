# NixOS VM test: this repository's Scrypted server with declared plugins,
# provisioned by sideloadd at boot with no network (test VMs have none), and
# each loaded by Scrypted; after a reboot nothing is deployed again; a changed
# plugin set deploys only the new plugin; provisioning never holds up boot or
# a switch; the plain-HTTP port stays closed to the network.
# For the flake's `checks`: import with { pkgs, self }. Needs KVM and the
# server's and plugins' sources (fixed-output fetches), so it runs on a real
# Nix machine: `nix build .#checks.x86_64-linux.vm-sideload -L`.
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
          # unifi-protect brings its plugin dependency, prebuffer-mixin; llm
          # its native npm dependencies (which Scrypted would npm-install).
          plugins = [
            "snapshot"
            "homekit"
            "unifi-protect"
            "llm"
          ];
          openFirewall = true;
          # In /etc (and so in the store) for the test only.
          adminPasswordFile = "/etc/scrypted-admin-password";
        };
        environment.etc."scrypted-admin-password" = {
          text = "correct-horse-battery";
          mode = "0400";
        };
        # A changed plugin set, switched to at the end of the test.
        specialisation.more.configuration = {
          mares.automation.scrypted.plugins = lib.mkForce [
            "snapshot"
            "homekit"
            "unifi-protect"
            "llm"
            "objectdetector"
          ];
        };
        environment.systemPackages = [
          pkgs.curl
          pkgs.jq
        ];
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
      moreConfig =
        nodes.server.specialisation.more.configuration.systemd.services.scrypted-sideload.restartTriggers;
      sideloadConfig = pkgs.lib.head nodes.server.systemd.services.scrypted-sideload.restartTriggers;
    in
    ''
      import json

      volume = "/var/lib/scrypted/volume"
      http = "http://127.0.0.1:${toString cfg.httpPort}"


      def declared(config):
          """npm name -> store path of every plugin sideloadd deploys
          (the declared ones and their dependencies), from its config."""
          plugins = json.loads(server.succeed(f"jq -c .plugins {config}"))
          return {p["name"]: p["path"] for p in plugins}


      def deployed_zips(plugins):
          """Each plugin's md5-named zip in the volume, as 'inode mtime': a
          redeploy writes it anew."""
          zips = {}
          for name, path in plugins.items():
              md5 = server.succeed(f"md5sum {path}/plugin.zip").split()[0]
              zip_file = f"{volume}/plugins/{name}/zip/1-{md5}.zip"
              zips[name] = server.succeed(f"stat -c '%i %Y' {zip_file}").strip()
          return zips


      def sideload_state():
          return server.succeed(
              "find /var/lib/private/scrypted-sideload -type f -exec sha256sum {} + | sort"
          )


      def runs():
          """The summary line of each finished sideloadd run of this boot."""
          out = server.succeed(
              "journalctl -b -u scrypted-sideload.service -o cat | grep -E 'plugins (in place|failed)' || true"
          )
          return out.splitlines()


      def wait_for_run(before):
          """Waits for a run to finish after `before` runs had; its summary."""
          server.wait_until_succeeds(f"test $(journalctl -b -u scrypted-sideload.service -o cat | grep -cE 'plugins (in place|failed)') -gt {before}", timeout=300)
          server.wait_until_succeeds("test $(systemctl show -P ActiveState scrypted-sideload.service) != active", timeout=60)
          return runs()[-1]


      def assert_loaded(plugins):
          """Scrypted itself says each plugin loaded: it started offline from
          what sideloadd put in place."""
          for name in plugins:
              server.wait_until_succeeds(
                  f"journalctl -b -u scrypted.service -o cat | grep -F 'loaded {name}'",
                  timeout=120,
              )
          server.fail(
              "journalctl -b -u scrypted.service -o cat"
              " | grep -E 'Plugin failed to load|plugin load error|error loading plugin'"
          )
          # Nothing was fetched: llm's native dependencies were in place, no
          # npm ran, no portable Python.
          server.succeed(
              "journalctl -b -u scrypted.service -o cat | grep -F 'native dependencies (up to date).'"
          )
          server.fail("journalctl -b -o cat | grep -E 'native dependencies \\(outdated\\)|npm (install|ERR)|spawn npm|portable python'")
          server.fail("pgrep -x npm")


      def http_status(url, token=None):
          auth = f"-H 'Authorization: Bearer {token}'" if token else ""
          return server.succeed(f"curl -s -o /dev/null -w '%{{http_code}}' {auth} {url}").strip()


      plugins = declared("${sideloadConfig}")
      more = declared("${pkgs.lib.head moreConfig}")
      assert "@scrypted/prebuffer-mixin" in plugins, "unifi-protect's dependency is not deployed"

      start_all()

      with subtest("plugins are provisioned at first boot, offline, and load"):
          server.wait_for_unit("multi-user.target")
          summary = wait_for_run(0)
          assert summary == f"{len(plugins)} plugins in place, 0 skipped", summary
          token = server.succeed("cat /var/lib/scrypted-secrets/admin-token").strip()
          first_zips = deployed_zips(plugins)
          first_state = sideload_state()
          assert_loaded(plugins)
          print(server.succeed("journalctl -b -u scrypted-sideload.service -o cat"))

      with subtest("the admin token works, nothing else does"):
          assert http_status(f"{http}/web/component/script/setup") == "401"
          assert http_status(f"{http}/web/component/script/setup", token) == "404"
          environ = server.succeed(
              "tr '\\0' '\\n' </proc/$(systemctl show -P MainPID scrypted.service)/environ"
          )
          assert f"SCRYPTED_ADMIN_TOKEN={token}" in environ.splitlines()
          assert "SCRYPTED_ADMIN_ADDRESS" not in environ
          server.fail(f"grep -qF {token} ${sideloadConfig} /etc/systemd/system/scrypted.service")

      with subtest("the web UI login works with the password of adminPasswordFile"):
          server.wait_until_succeeds(
              "journalctl -b -u scrypted-sideload.service -o cat | grep -F 'admin password of admin'", timeout=60
          )
          def login(password):
              body = json.dumps({"username": "admin", "password": password})
              return json.loads(server.succeed(
                  f"curl -s -X POST -H 'Content-Type: application/json' -d '{body}' {http}/login"
              ))

          assert "error" not in login("correct-horse-battery")
          assert "error" in login("wrong-password")

      with subtest("only HTTPS is reachable from the network"):
          server.wait_for_open_port(${toString cfg.httpsPort})
          outside.succeed("curl -sk --max-time 10 -o /dev/null https://server:${toString cfg.httpsPort}/login")
          outside.fail("curl -s --max-time 5 -o /dev/null http://server:${toString cfg.httpPort}/login")

      with subtest("provisioning runs in the background while Scrypted does not answer"):
          before = len(runs())
          server.succeed("systemctl kill --signal=SIGSTOP scrypted.service")
          # Type=exec: the start job is done once sideloadd runs, not once it is done.
          server.succeed("timeout 20 systemctl restart scrypted-sideload.service")
          server.succeed("systemctl is-active scrypted-sideload.service")
          server.succeed("systemctl kill --signal=SIGCONT scrypted.service")
          summary = wait_for_run(before)
          assert summary == f"{len(plugins)} plugins in place, {len(plugins)} skipped", summary

      with subtest("a reboot deploys nothing"):
          server.shutdown()
          server.start()
          server.wait_for_unit("multi-user.target")
          summary = wait_for_run(0)
          assert summary == f"{len(plugins)} plugins in place, {len(plugins)} skipped", summary
          assert server.succeed("cat /var/lib/scrypted-secrets/admin-token").strip() == token
          assert deployed_zips(plugins) == first_zips, "a plugin was deployed again"
          assert sideload_state() == first_state, "sideloadd's state changed"
          assert_loaded(plugins)

      with subtest("a new plugin in the set is deployed alone"):
          before = len(runs())
          server.succeed(
              "timeout 60 /run/booted-system/specialisation/more/bin/switch-to-configuration test"
          )
          summary = wait_for_run(before)
          assert summary == f"{len(more)} plugins in place, {len(plugins)} skipped", summary
          zips = deployed_zips(more)
          assert {n: zips[n] for n in plugins} == first_zips, "an unchanged plugin was redeployed"
          assert_loaded(more)
    '';
}
