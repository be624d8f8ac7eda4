//! Python plugins: requirements.txt read from the zip of a tarball served on
//! loopback, decided for x86_64-linux and aarch64-linux, mapped through the
//! repository's alias table, and rendered (or the reasons recorded).

use serde_json::{Value, json};

use crate::*;

/// A root with the committed alias table.
fn python_root() -> tempfile::TempDir {
    let root = new_root();
    let table =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nix/plugins/python-packages.json");
    std::fs::copy(table, root.path().join("nix/plugins/python-packages.json")).expect("copy table");
    root
}

/// Publishes a Python plugin whose zip holds `requirements` (and `extra` files).
fn publish(server: &Server, name: &str, scrypted: Value, zip_files: &[(&str, &str)]) {
    let mut files = vec![("main.py", "import sys")];
    files.extend_from_slice(zip_files);
    let zip = plugin_zip(&files);
    let mut package = json!({"name": format!("@scrypted/{name}"), "version": "1.0.0"});
    package["scrypted"] = scrypted.clone();
    let package = serde_json::to_vec(&package).expect("json");
    let tarball = tgz(&[("package.json", &package), ("dist/plugin.zip", &zip)]);
    let mut doc = plugin_doc(name, "1.0.0");
    doc["scrypted"] = scrypted;
    doc["dist"]["integrity"] = json!(sri(&tarball));
    server.latest(name, &doc);
    server.set(
        &format!("/@scrypted/{name}/-/{name}-1.0.0.tgz"),
        Reply::Ok(tarball),
    );
}

const ONNX: &str = "# cuda 12\n# --extra-index-url https://example/simple/\nonnxruntime-gpu==1.22.0; 'darwin' not in sys_platform and platform_machine != 'aarch64'\nonnxruntime; 'darwin' in sys_platform or platform_machine == 'aarch64'\n\nPillow==10.3.0\nopencv-python-headless==4.10.0.84\ncoremltools; sys_platform == 'darwin'\nimutils>=0.5.0";

fn python(extra: Value) -> Value {
    let mut s = json!({"name": "Detector", "runtime": "python", "type": "API"});
    if let (Some(s), Some(e)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    s
}

fn warnings_of(r: &Value, name: &str) -> Vec<String> {
    r["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["name"] == name)
        .map(|w| w["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn mappable_plugin_is_rendered_with_its_pins_per_platform() {
    let server = small_registry(&["detector"]);
    publish(
        &server,
        "detector",
        python(json!({})),
        &[("requirements.txt", ONNX)],
    );
    let root = python_root();
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(names(&r, "added"), ["detector"]);
    assert!(warnings_of(&r, "detector").is_empty(), "{r}");
    let text = read(&plugin_file(root.path(), "detector"));
    golden("python/detector.nix", &text);
    assert!(text.contains("  runtimeNeeds = [ ];"), "{text}");

    // The second run reads the zip again and rewrites nothing; so does a
    // --metadata-only run, which keeps the requirements as recorded.
    for args in [&["--json"][..], &["--json", "--metadata-only"]] {
        let again = nixgen(root.path(), &server.url, args);
        assert_eq!(again.code, 0, "{again:?}");
        assert_eq!(again.json()["files_changed"], 0, "{args:?}: {again:?}");
    }
    assert_eq!(server.hits("/@scrypted/detector/-/detector-1.0.0.tgz"), 2);

    if has_nix() {
        let file = plugin_file(root.path(), "detector");
        let got = nix_eval(&format!(
            "(import {} {{ mkScryptedPlugin = x: x; }}).python.requirements",
            file.display()
        ));
        assert_eq!(
            got,
            json!([
                {"name": "onnxruntime-gpu", "pin": "1.22.0", "platforms": ["x86_64-linux"]},
                {"name": "onnxruntime", "pin": null, "platforms": ["aarch64-linux"]},
                {"name": "Pillow", "pin": "10.3.0"},
                {"name": "opencv-python-headless", "pin": "4.10.0.84"},
                {"name": "coremltools", "pin": null, "platforms": []},
                {"name": "imutils", "pin": null},
            ])
        );
    }
}

#[test]
fn what_nixpkgs_cannot_provide_is_recorded_with_the_reason() {
    let cases: [(&str, Value, &str, &[&str]); 4] = [
        (
            "tflite",
            python(json!({"pythonVersion": {"default": "3.9", "darwin": {"arm64": "3.10"}}})),
            "--extra-index-url https://google-coral.github.io/py-repo/\nnumpy==1.26.4\npycoral~=2.0\ntflite-runtime==2.5.0.post1\nPillow==10.3.0\n",
            &[
                "a portable Python 3.9 download at start (the server runs nixpkgs' Python 3.13)",
                "pip install at start: no nixpkgs package for pycoral, tflite-runtime in nix/plugins/python-packages.json",
                "pip install at start: requirements.txt uses --extra-index-url (another package index or file)",
            ],
        ),
        (
            "rknn",
            python(json!({})),
            "rknn-toolkit-lite2 @ https://github.com/airockchip/rknn-toolkit2/raw/v2/rknn.whl; platform_machine == 'aarch64'\nPillow==10.3.0\n",
            &["pip install at start: requirements.txt names a package by URL"],
        ),
        (
            "hostile",
            python(json!({})),
            "Pillow==10.3.0\"; ${builtins.abort \"x\"}\nok==1 ; python_version < '3.10'\n",
            &[
                "pip install at start: ok has a marker variable python_version cannot be decided at update time",
                "pip install at start: requirements.txt has a line nixgen cannot read",
            ],
        ),
        ("nozip", python(json!({})), "", &[]),
    ];
    let names_: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let server = small_registry(&names_);
    for (name, scrypted, requirements, _) in &cases {
        let files: &[(&str, &str)] = if requirements.is_empty() {
            &[]
        } else {
            &[("requirements.txt", requirements)]
        };
        publish(&server, name, scrypted.clone(), files);
    }
    let root = python_root();
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    for (name, _, _, reasons) in &cases {
        let text = read(&plugin_file(root.path(), name));
        assert!(!text.contains("python.requirements"), "{name}: {text}");
        let recorded = nixgen::tree::recorded_needs(&text).expect("needs");
        assert_eq!(recorded, *reasons, "{name}");
        let warned: Vec<String> = reasons
            .iter()
            .map(|n| format!("Python packages not from nixpkgs: {n}"))
            .collect();
        assert_eq!(warnings_of(&r, name), warned, "{name}");
        assert!(
            rnix::Root::parse(&text).errors().is_empty(),
            "{name}: {text}"
        );
    }
    golden(
        "python/tflite.nix",
        &read(&plugin_file(root.path(), "tflite")),
    );
}

#[test]
fn without_an_alias_table_nothing_maps() {
    let server = small_registry(&["detector"]);
    publish(
        &server,
        "detector",
        python(json!({})),
        &[("requirements.txt", "Pillow==10.3.0\n")],
    );
    let root = new_root();
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = read(&plugin_file(root.path(), "detector"));
    assert_eq!(
        nixgen::tree::recorded_needs(&text).expect("needs"),
        ["pip install at start: the tree has no nix/plugins/python-packages.json"]
    );
}

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

/// predict/__init__.py and ort/__init__.py as the detection plugins write
/// them: the repository, a default block, and a secondary model by literal.
const SOURCES: [(&str, &str); 2] = [
    (
        "predict/__init__.py",
        "    def downloadHuggingFaceModel(self, model, local_files_only=False):\n        from huggingface_hub import snapshot_download\n        return snapshot_download(repo_id=\"scrypted/plugin-models\", allow_patterns=f\"{p}/{model}/*\")\n",
    ),
    (
        "ort/__init__.py",
        "        model = self.storage.getItem(\"model\") or \"Default\"\n        if model == \"Default\" or model not in availableModels:\n            model = \"scrypted_m\"\n        path = self.downloadHuggingFaceModelLocalFallback(model)\n        clip = self.downloadHuggingFaceModelLocalFallback(\"clip\")\n",
    ),
];

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha256_sri(data: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data))
    )
}

/// The Hub's answers, shaped as huggingface.co gives them
/// (docs/huggingface-api.md): the revision document and one tree listing
/// per model directory, an LFS file (listed by its sha256) and a file kept
/// in git (downloaded to hash it).
fn serve_hub(server: &Server, plugin: &str) -> Vec<(String, Vec<u8>)> {
    server.set(
        "/api/models/scrypted/plugin-models/revision/main",
        Reply::json(
            &json!({"_id": "6600", "id": "scrypted/plugin-models", "private": false,
            "sha": REVISION, "lastModified": "2025-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": ".gitattributes"}]}),
        ),
    );
    let mut files = Vec::new();
    for model in ["clip", "scrypted_m"] {
        let weights = format!("weights of {model}").into_bytes();
        let labels = format!("labels of {model}\n").into_bytes();
        let dir = format!("{plugin}/{model}");
        let listing = json!([
            {"type": "directory", "oid": "1111111111111111111111111111111111111111", "size": 0, "path": format!("{dir}/sub")},
            {"type": "file", "oid": "2222222222222222222222222222222222222222", "size": weights.len(),
             "path": format!("{dir}/{model}.onnx"),
             "lfs": {"oid": sha256_hex(&weights), "size": weights.len(), "pointerSize": 134}},
            {"type": "file", "oid": "3333333333333333333333333333333333333333", "size": labels.len(),
             "path": format!("{dir}/labels.txt")},
        ]);
        server.set(
            &format!("/api/models/scrypted/plugin-models/tree/{REVISION}/{dir}"),
            Reply::json(&listing),
        );
        server.set(
            &format!("/scrypted/plugin-models/resolve/{REVISION}/{dir}/labels.txt"),
            Reply::Ok(labels.clone()),
        );
        files.push((format!("{dir}/labels.txt"), labels));
        files.push((format!("{dir}/{model}.onnx"), weights));
    }
    files.sort();
    files
}

#[test]
fn default_models_are_pinned_from_the_hub_and_kept_when_it_is_unreachable() {
    let server = small_registry(&["detector"]);
    let mut zip_files = vec![("requirements.txt", "Pillow==10.3.0\n")];
    zip_files.extend(SOURCES);
    publish(&server, "detector", python(json!({})), &zip_files);
    let files = serve_hub(&server, "detector");
    let root = python_root();
    let hub = [("HF_ENDPOINT", server.url.as_str())];
    let out = nixgen_env(root.path(), &server.url, &["--json"], &hub);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(warnings_of(&out.json(), "detector").is_empty(), "{out:?}");
    let text = read(&plugin_file(root.path(), "detector"));
    assert!(
        text.contains("  runtimeNeeds = [ ];"),
        "the Hub need stays: {text}"
    );
    for (path, data) in &files {
        let entry = format!(
            "      path = \"{path}\";\n      url = \"{}/scrypted/plugin-models/resolve/{REVISION}/{path}\";\n      size = {};\n      hash = \"{}\";\n",
            server.url,
            data.len(),
            sha256_sri(data)
        );
        assert!(text.contains(&entry), "{entry} not in {text}");
    }
    // Only the git file was downloaded; the weights are pinned by their LFS oid.
    assert_eq!(
        server.hits(&format!(
            "/scrypted/plugin-models/resolve/{REVISION}/detector/clip/clip.onnx"
        )),
        0
    );
    assert_eq!(
        server.hits(&format!(
            "/scrypted/plugin-models/resolve/{REVISION}/detector/clip/labels.txt"
        )),
        1
    );

    // The Hub unreachable: the pins stay, and the run says so.
    let out = nixgen(root.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(r["files_changed"], 0, "{r}");
    let w = warnings_of(&r, "detector");
    assert!(
        w.len() == 1
            && w[0].starts_with("models not refreshed from http://127.0.0.1:9: ")
            && w[0].ends_with("the previous model pins are kept"),
        "{w:?}"
    );
    assert_eq!(read(&plugin_file(root.path(), "detector")), text);

    // A plugin with no pins yet keeps needing the Hub, and says which models.
    let fresh = python_root();
    let out = nixgen(fresh.path(), &server.url, &["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let w = warnings_of(&out.json(), "detector");
    assert!(
        w.len() == 1 && w[0].ends_with("the plugin downloads clip, scrypted_m at start"),
        "{w:?}"
    );
    let text = read(&plugin_file(fresh.path(), "detector"));
    assert!(
        text.contains("runtimeNeeds = [ \"model downloads from huggingface.co\" ];")
            && !text.contains("python.models"),
        "{text}"
    );
}

#[test]
fn hub_listings_outside_the_model_or_not_sha256_are_refused() {
    let server = small_registry(&["detector"]);
    let mut zip_files = vec![("requirements.txt", "Pillow==10.3.0\n")];
    zip_files.extend(SOURCES);
    publish(&server, "detector", python(json!({})), &zip_files);
    serve_hub(&server, "detector");
    let hub = [("HF_ENDPOINT", server.url.as_str())];
    let lfs = |oid: &str| json!({"oid": oid, "size": 1, "pointerSize": 134});
    for (path, lfs, why) in [
        (
            "detector/clip/../../etc/x",
            lfs(&"a".repeat(64)),
            "not a plain path inside the model's directory",
        ),
        (
            "detector/other/x.onnx",
            lfs(&"a".repeat(64)),
            "not a plain path inside the model's directory",
        ),
        (
            "detector/clip/\"${x}\".onnx",
            lfs(&"a".repeat(64)),
            "not a plain path inside the model's directory",
        ),
        (
            "detector/clip/x.onnx",
            lfs("not-a-sha256"),
            "LFS oid is not a sha256",
        ),
    ] {
        server.set(
            &format!("/api/models/scrypted/plugin-models/tree/{REVISION}/detector/clip"),
            Reply::json(
                &json!([{"type": "file", "oid": "0", "size": 1, "path": path, "lfs": lfs}]),
            ),
        );
        let root = python_root();
        let out = nixgen_env(root.path(), &server.url, &["--json"], &hub);
        assert_eq!(out.code, 0, "{out:?}");
        let w = warnings_of(&out.json(), "detector");
        assert!(
            w.len() == 1 && w[0].contains(why) && w[0].starts_with("models not pinned"),
            "{path}: {w:?}"
        );
        let text = read(&plugin_file(root.path(), "detector"));
        assert!(
            !text.contains("python.models") && !text.contains("${x}"),
            "{text}"
        );
    }
}
