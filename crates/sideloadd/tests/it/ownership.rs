//! `prune` removes only what sideloadd installed: while what is installed is still
//! the version and zip sideloadd put there. A plugin installed by hand since, also
//! over one sideloadd had installed, is never touched.

use fake_scrypted::fixture::PluginSpec;

use crate::harness::{Harness, Setup, hand_install};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_leaves_a_plugin_reinstalled_by_hand() {
    let h = Harness::start(Setup::default()).await;
    h.run().await.assert_code(0);
    let (newer, same_version) = (&h.specs[1].name, &h.specs[2].name);
    // Both leave the config; then the user installs them again by hand: one a newer
    // version, one the same version with other bytes.
    h.write_config(|c| {
        c["plugins"].as_array_mut().expect("list").truncate(1);
    });
    hand_install(&h, &PluginSpec::new(newer, "1.0.1")).await;
    let mut other_zip = PluginSpec::new(same_version, "1.0.0");
    other_zip.main_js = Some("// built by hand\nexports.default = class P {};\n".into());
    hand_install(&h, &other_zip).await;

    let (_, text, _) = h.status();
    let line = text
        .lines()
        .find(|l| l.contains(newer.as_str()))
        .expect("line");
    assert!(
        line.contains("1.0.1") && line.contains("installed by other means"),
        "status names the version installed: {text}"
    );

    h.write_config(|c| {
        c["plugins"].as_array_mut().expect("list").truncate(1);
        c["prune"] = true.into();
    });
    let out = h.run().await;
    out.assert_code(0);
    assert!(
        out.stderr.contains("not sideloadd's to remove"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("pruned"), "{}", out.stderr);
    let kept = h.server.plugin(newer).expect("left alone");
    assert_eq!(kept.package_json["version"], "1.0.1");
    assert!(h.server.plugin(same_version).is_some(), "left alone");
    // And no longer tracked as sideloadd's.
    let state = h.state();
    assert!(
        state["undeclared"].as_object().is_none_or(|u| u.is_empty()),
        "{state}"
    );
}
