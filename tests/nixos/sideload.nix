# NixOS VM test: this repository's Scrypted server with declared plugins,
# provisioned by sideloadd at boot with no network (test VMs have none), and
# each loaded by Scrypted, the web UI's core from the pin; after a reboot
# nothing is deployed again; a lost plugins/ directory or volume comes back,
# offline; a changed plugin set deploys only the new plugin, a dropped one is
# pruned, one that fails to load fails the unit and nothing else; a stopped
# Scrypted stays stopped across a timer run; provisioning never holds up boot
# or a switch; the plain-HTTP port stays closed to the network; no unexpected
# error lines; `systemd-analyze security` of both units in the log.
# For the flake's `checks`: import with { pkgs, self }. Needs KVM and the
# server's and plugins' sources (fixed-output fetches), so it runs on a real
# Nix machine: `nix build .#checks.x86_64-linux.vm-sideload -L`.
{ pkgs, self }:
let
  # A plugin that fails to load: well-formed (sideloadd's checks pass), its
  # main module throws.
  brokenPlugin =
    pkgs.runCommand "scrypted-plugin-vm-test-broken-1.0.0"
      {
        nativeBuildInputs = [ pkgs.zip ];
        passthru.pluginName = "@scrypted/vm-test-broken";
      }
      ''
        mkdir -p "$out" plugin
        echo 'throw new Error("vm-test-broken fails to load on purpose");' >plugin/main.nodejs.js
        (cd plugin && zip -q -X ../plugin.zip main.nodejs.js)
        cp plugin.zip "$out/plugin.zip"
        echo '{"name": "@scrypted/vm-test-broken", "version": "1.0.0", "scrypted": {"name": "VM test: fails to load", "type": "API", "interfaces": []}}' >"$out/package.json"
      '';
in
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
        # Changed plugin sets, switched to at the end of the test: one more
        # plugin; homekit and objectdetector dropped with prune on; a plugin
        # that fails to load added.
        specialisation.more.configuration = {
          mares.automation.scrypted.plugins = lib.mkForce [
            "snapshot"
            "homekit"
            "unifi-protect"
            "llm"
            "objectdetector"
          ];
        };
        specialisation.pruned.configuration = {
          mares.automation.scrypted = {
            plugins = lib.mkForce [
              "snapshot"
              "unifi-protect"
              "llm"
            ];
            prune = true;
          };
        };
        specialisation.broken.configuration = {
          mares.automation.scrypted = {
            plugins = lib.mkForce [
              "snapshot"
              "unifi-protect"
              "llm"
              brokenPlugin
            ];
            prune = true;
          };
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
      specialisationConfig =
        name:
        pkgs.lib.head
          nodes.server.specialisation.${name}.configuration.systemd.services.scrypted-sideload.restartTriggers;
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


      def now():
          return server.succeed("date '+%Y-%m-%d %H:%M:%S'").strip()


      def scrypted_log(since=None):
          """Scrypted's log of this boot, from `since` on."""
          since_option = f"--since '{since}'" if since else ""
          return f"journalctl -b -u scrypted.service {since_option} -o cat"


      # What never belongs in Scrypted's log here: a failed load, a download
      # (npm, pip, the portable Python, core's auto-install), a crash.
      SCRYPTED_ERRORS = (
          "Plugin failed to load|plugin load error|error loading plugin|installing package"
          "|auto install failed|native dependencies \\(outdated\\)|npm (install|ERR)|spawn npm"
          "|portable python|pip install|Unhandled(Promise)?Rejection|uncaughtException"
      )


      def assert_loaded(plugins, since):
          """Scrypted itself says each plugin loaded, since `since`: it started
          offline from what sideloadd put in place."""
          for name in plugins:
              server.wait_until_succeeds(f"{scrypted_log(since)} | grep -F 'loaded {name}'", timeout=120)
          server.fail(f"{scrypted_log(since)} | grep -E '{SCRYPTED_ERRORS}'")
          # llm's native dependencies were in place: no npm ran.
          server.succeed(f"{scrypted_log(since)} | grep -F 'native dependencies (up to date).'")
          server.fail("pgrep -x npm")


      def no_sideload_errors(since):
          """sideloadd logged nothing at error level (through the journal) and
          printed no error (its failures go to stderr as `error: ...`)."""
          since_option = f"--since '{since}'" if since else ""
          journal = f"journalctl -b -u scrypted-sideload.service {since_option}"
          errors = server.succeed(f"{journal} -p err -o cat").strip()
          assert errors == "", errors
          server.fail(f"{journal} -o cat | grep -E '^error'")


      def switch_to(name):
          before = len(runs())
          server.succeed(
              f"timeout 60 /run/booted-system/specialisation/{name}/bin/switch-to-configuration test"
          )
          return wait_for_run(before)


      def http_status(url, token=None):
          auth = f"-H 'Authorization: Bearer {token}'" if token else ""
          return server.succeed(f"curl -s -o /dev/null -w '%{{http_code}}' {auth} {url}").strip()


      plugins = declared("${sideloadConfig}")
      more = declared("${specialisationConfig "more"}")
      pruned = declared("${specialisationConfig "pruned"}")
      broken = declared("${specialisationConfig "broken"}")
      assert "@scrypted/prebuffer-mixin" in plugins, "unifi-protect's dependency is not deployed"
      assert "@scrypted/core" in plugins, "the pinned core is not provisioned"

      start_all()

      with subtest("plugins are provisioned at first boot, offline, and load"):
          server.wait_for_unit("multi-user.target")
          summary = wait_for_run(0)
          assert summary == f"{len(plugins)} plugins in place, 0 skipped", summary
          token = server.succeed("cat /var/lib/scrypted-secrets/admin-token").strip()
          first_zips = deployed_zips(plugins)
          first_state = sideload_state()
          assert_loaded(plugins, None)
          no_sideload_errors(None)
          print(server.succeed("journalctl -b -u scrypted-sideload.service -o cat"))

      with subtest("the web UI's core is the pinned one, served with no network"):
          assert http_status(f"{http}/endpoint/@scrypted/core/public/") == "200"
          server.fail("journalctl -b -u scrypted.service -o cat | grep -E 'installing package|auto install failed'")

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

      with subtest("a stopped Scrypted stays stopped across a timer run"):
          server.succeed("systemctl stop scrypted.service")
          # What the timer does: start the service. Requisite= fails that start
          # instead of starting Scrypted with it.
          server.fail("systemctl start scrypted-sideload.service")
          server.sleep(5)
          assert server.succeed("systemctl show -P ActiveState scrypted.service").strip() == "inactive"
          before = len(runs())
          server.succeed("systemctl start scrypted.service")
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
          assert_loaded(plugins, None)

      for lost, path in (("its plugins/ directory", f"{volume}/plugins"), ("its whole volume", volume)):
          with subtest(f"the plugins survive a lost volume: {lost}, offline"):
              since = now()
              before = len(runs())
              server.succeed("systemctl stop scrypted.service")
              server.succeed(f"rm -rf {path}")
              server.succeed("systemctl start scrypted.service")
              summary = wait_for_run(before)
              # Scrypted restores plugins/ from its database itself; a lost
              # volume is deployed again from the store.
              assert summary.startswith(f"{len(plugins)} plugins in place"), summary
              assert set(deployed_zips(plugins)) == set(plugins)
              assert_loaded(plugins, since)
              no_sideload_errors(since)

      with subtest("a new plugin in the set is deployed alone"):
          since = now()
          zips_before = deployed_zips(plugins)
          summary = switch_to("more")
          assert summary == f"{len(more)} plugins in place, {len(plugins)} skipped", summary
          zips = deployed_zips(more)
          assert {n: zips[n] for n in plugins} == zips_before, "an unchanged plugin was redeployed"
          assert_loaded(more, since)

      with subtest("with prune, a plugin dropped from the set is uninstalled"):
          since = now()
          summary = switch_to("pruned")
          dropped = set(more) - set(pruned)
          assert summary == f"{len(pruned)} plugins in place, {len(pruned)} skipped, {len(dropped)} pruned", summary
          for name in dropped:
              server.wait_until_fails(f"test -e {volume}/plugins/{name}/zip", timeout=60)
          no_sideload_errors(since)

      with subtest("the journals hold no unexpected errors, and the units' exposure"):
          server.fail(f"{scrypted_log()} | grep -E '{SCRYPTED_ERRORS}'")
          print(server.succeed("systemd-analyze security --no-pager scrypted.service scrypted-sideload.service"))

      with subtest("a plugin that fails to load fails the unit, naming it, and nothing else"):
          since = now()
          zips_before = deployed_zips(pruned)
          summary = switch_to("broken")
          assert summary == f"error: 1 of {len(broken)} plugins failed: @scrypted/vm-test-broken", summary
          # systemd's own line: the run ended with sideloadd's exit code (read
          # from the journal: the unit's Result resets when it restarts).
          server.succeed(
              f"journalctl -u scrypted-sideload.service --since '{since}' -o cat"
              " | grep -F \"Failed with result 'exit-code'\""
          )
          server.succeed(
              f"journalctl -u scrypted-sideload.service --since '{since}' -o cat"
              " | grep -F 'error: plugin @scrypted/vm-test-broken failed'"
          )
          assert deployed_zips(pruned) == zips_before, "a working plugin was redeployed"
          for name in pruned:
              server.fail(f"{scrypted_log(since)} | grep -E '(exited|stopped|failed).*{name}|{name}.*(exited|stopped|failed)'")
    '';
}
