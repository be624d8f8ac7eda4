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
    let old: Vec<String> = refs
        .iter()
        .map(|n| read(&plugin_file(root.path(), n)))
        .collect();
    for n in &refs {
        server.latest(n, &plugin_doc(n, "2.0.0"));
    }
    server.set_delay(Duration::from_millis(15));
    for round in 0..8u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nixgen"))
            .args(["update", "--jobs", "4", "--registry", &server.url, "--root"])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(20 + round * 17));
        let _ = child.kill();
        let _ = child.wait();
        for (n, old_text) in refs.iter().zip(&old) {
            let text = read(&plugin_file(root.path(), n));
            let new_text = old_text.replace("1.0.0", "2.0.0").replace(
                &sri(format!("{n}-1.0.0").as_bytes()),
                &sri(format!("{n}-2.0.0").as_bytes()),
            );
            assert!(
                text == *old_text || text == new_text,
                "round {round}: {n} is neither old nor new:\n{text}"
            );
        }
    }
    server.set_delay(Duration::ZERO);
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let stray: Vec<_> = std::fs::read_dir(root.path().join("nix/plugins"))
        .expect("ls")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}
