//! Killed at any moment, each file is either old or new, never half-written.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::*;

#[test]
fn sigkill_mid_run_leaves_whole_files() {
    let names_: Vec<String> = (0..24).map(|i| format!("p{i:02}")).collect();
    let refs: Vec<&str> = names_.iter().map(String::as_str).collect();
    let server = small_registry(&refs);
    let root = new_root();
    assert_eq!(nixgen(root.path(), &server.url, &[]).code, 0);
    let first: Vec<String> = refs
        .iter()
        .map(|n| read(&plugin_file(root.path(), n)))
        .collect();
    // The whole file each plugin would have at version `v`.
    let at = |i: usize, v: u32| {
        let n = refs[i];
        first[i]
            .replace("version = \"1.0.0\"", &format!("version = \"{v}.0.0\""))
            .replace(
                &sri(format!("{n}-1.0.0").as_bytes()),
                &sri(format!("{n}-{v}.0.0").as_bytes()),
            )
    };
    server.set_delay(Duration::from_millis(10));
    let (mut mixed_rounds, rounds) = (0, 12u32);
    for round in 0..rounds {
        // Every round publishes a new version, so there is always work to cut.
        let version = round + 2;
        for n in &refs {
            server.latest(n, &plugin_doc(n, &format!("{version}.0.0")));
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_nixgen"))
            .args(["update", "--jobs", "8", "--min-release-age", "0"])
            .args(["--registry", &server.url, "--root"])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(15 + u64::from(round) * 12));
        let _ = child.kill();
        let _ = child.wait();
        let mut versions = std::collections::BTreeSet::new();
        for (i, n) in refs.iter().enumerate() {
            let text = read(&plugin_file(root.path(), n));
            let v = (1..=version).find(|&v| text == at(i, v));
            let v = v.unwrap_or_else(|| {
                panic!("round {round}: {n} is not a whole generated file:\n{text}")
            });
            versions.insert(v);
        }
        mixed_rounds += usize::from(versions.len() > 1);
    }
    eprintln!("{mixed_rounds}/{rounds} kills landed while files were being written");
    server.set_delay(Duration::ZERO);
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let stray: Vec<_> = std::fs::read_dir(root.path().join("nix/plugins"))
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    for (i, n) in refs.iter().enumerate() {
        assert_eq!(read(&plugin_file(root.path(), n)), at(i, rounds + 1));
    }
}
