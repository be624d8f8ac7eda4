//! Checks a plugin directory before anything is sent to Scrypted.
//!
//! Scrypted validates nothing itself: setup stores any JSON (`{}` poisons the plugin
//! record), and deploy kills the running plugin and deletes its files *before* it
//! notices a corrupt zip. So every check that can be made locally is made here, and a
//! plugin that fails one is never sent.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde_json::Value;

use crate::config::PluginDecl;
use crate::zipcheck;

/// The raw body limit of Scrypted's deploy route (`bodyParser.raw`, 100 MB).
pub const MAX_ZIP_BYTES: u64 = 100_000_000;
/// The entry Scrypted's node runtime loads.
pub const NODE_ENTRY: &str = "main.nodejs.js";
/// The entry Scrypted's python runtime loads (`"scrypted": { "runtime": "python" }`).
pub const PYTHON_ENTRY: &str = "main.py";

/// A plugin that passed every local check, with what is needed to deploy it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPlugin {
    pub name: String,
    pub version: String,
    /// Sent as-is as the setup body.
    pub package_json: Vec<u8>,
    pub package_json_md5: String,
    pub zip_path: PathBuf,
    pub zip_size: u64,
    /// md5 of the exact zip bytes: Scrypted names the installed zip after it.
    pub zip_md5: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not valid JSON: {source}")]
    PackageJsonSyntax {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {problem}")]
    PackageJson { path: PathBuf, problem: String },
    #[error("{path} would break Scrypted's extractor: {source}")]
    Zip {
        path: PathBuf,
        source: zipcheck::ZipProblem,
    },
    #[error("{path} has no {entry}, Scrypted would start nothing")]
    NoMain { path: PathBuf, entry: &'static str },
    #[error("{path} is {size} bytes, over Scrypted's upload limit of {MAX_ZIP_BYTES}")]
    TooLarge { path: PathBuf, size: u64 },
}

/// Validates `decl.path`: package.json names the declared plugin, has a version and a
/// `scrypted` section; plugin.zip passes every check of [`zipcheck`] (nothing
/// Scrypted's extractor chokes on) and has the entry its runtime loads
/// (`main.nodejs.js`, or `main.py` for a python plugin). Blocking I/O; reads the zip
/// twice in small buffers (never whole into memory).
pub fn validate(decl: &PluginDecl) -> Result<ValidPlugin, PluginError> {
    let pj_path = decl.path.join("package.json");
    let package_json = std::fs::read(&pj_path).map_err(|source| PluginError::Read {
        path: pj_path.clone(),
        source,
    })?;
    let (version, entry) = check_package_json(&package_json, &decl.name).map_err(|e| match e {
        PjProblem::Syntax(source) => PluginError::PackageJsonSyntax {
            path: pj_path.clone(),
            source,
        },
        PjProblem::Content(problem) => PluginError::PackageJson {
            path: pj_path.clone(),
            problem,
        },
    })?;

    let zip_path = decl.path.join("plugin.zip");
    let read_err = |source| PluginError::Read {
        path: zip_path.clone(),
        source,
    };
    let zip_size = std::fs::metadata(&zip_path).map_err(read_err)?.len();
    if zip_size > MAX_ZIP_BYTES {
        return Err(PluginError::TooLarge {
            path: zip_path,
            size: zip_size,
        });
    }
    check_zip(&zip_path, entry)?;
    let zip_md5 = md5_file(&zip_path).map_err(read_err)?;
    Ok(ValidPlugin {
        name: decl.name.clone(),
        version,
        package_json_md5: hex(&Md5::digest(&package_json)),
        package_json,
        zip_path,
        zip_size,
        zip_md5,
    })
}

enum PjProblem {
    Syntax(serde_json::Error),
    Content(String),
}

/// Returns the version and the zip entry the plugin's runtime starts.
fn check_package_json(bytes: &[u8], declared: &str) -> Result<(String, &'static str), PjProblem> {
    let v: Value = serde_json::from_slice(bytes).map_err(PjProblem::Syntax)?;
    let obj = v
        .as_object()
        .ok_or_else(|| PjProblem::Content("is not a JSON object".into()))?;
    match obj.get("name").and_then(Value::as_str) {
        Some(n) if n == declared => {}
        Some(n) => {
            return Err(PjProblem::Content(format!(
                "names {n:?}, but the config declares {declared:?}"
            )));
        }
        None => return Err(PjProblem::Content("has no \"name\"".into())),
    }
    let version = match obj.get("version").and_then(Value::as_str) {
        Some(v) if !v.trim().is_empty() => v.to_string(),
        _ => return Err(PjProblem::Content("has no \"version\"".into())),
    };
    let Some(scrypted) = obj.get("scrypted").and_then(Value::as_object) else {
        return Err(PjProblem::Content(
            "has no \"scrypted\" section, so it is not a Scrypted plugin".into(),
        ));
    };
    let entry = match scrypted.get("runtime").and_then(Value::as_str) {
        Some("python") => PYTHON_ENTRY,
        _ => NODE_ENTRY,
    };
    Ok((version, entry))
}

fn check_zip(path: &Path, entry_name: &'static str) -> Result<(), PluginError> {
    let file = File::open(path).map_err(|source| PluginError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let names = zipcheck::check(file).map_err(|source| PluginError::Zip {
        path: path.to_path_buf(),
        source,
    })?;
    if !names.iter().any(|n| n == entry_name) {
        return Err(PluginError::NoMain {
            path: path.to_path_buf(),
            entry: entry_name,
        });
    }
    Ok(())
}

pub fn md5_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake_scrypted::fixture::{self, PluginSpec};

    fn decl(dir: &Path, name: &str) -> PluginDecl {
        PluginDecl {
            name: name.into(),
            path: dir.to_path_buf(),
            key: "plugins[0]".into(),
        }
    }

    #[test]
    fn a_good_plugin_passes_with_its_digest() {
        let t = tempfile::tempdir().expect("tempdir");
        PluginSpec::new("@scrypted/nvr", "0.12.43")
            .write(t.path())
            .expect("write");
        let v = validate(&decl(t.path(), "@scrypted/nvr")).expect("valid");
        assert_eq!(v.version, "0.12.43");
        let bytes = std::fs::read(t.path().join("plugin.zip")).expect("read");
        assert_eq!(v.zip_md5, fake_scrypted::md5_hex(&bytes));
        assert_eq!(v.zip_size, bytes.len() as u64);
    }

    #[test]
    fn a_python_plugin_passes_with_main_py() {
        use std::io::Write;
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            t.path().join("package.json"),
            r#"{"name":"@scrypted/openvino","version":"0.1.199","scrypted":{"runtime":"python"}}"#,
        )
        .expect("write");
        let mut zip = zip::ZipWriter::new(File::create(t.path().join("plugin.zip")).expect("zip"));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, text) in [
            ("main.py", "from ov import OpenVINOPlugin\n"),
            ("requirements.txt", "openvino\n"),
        ] {
            zip.start_file(name, opts).expect("entry");
            zip.write_all(text.as_bytes()).expect("write entry");
        }
        zip.finish().expect("finish");
        let v = validate(&decl(t.path(), "@scrypted/openvino")).expect("python plugin is valid");
        assert_eq!(v.version, "0.1.199");
    }

    #[test]
    fn package_json_problems() {
        let t = tempfile::tempdir().expect("tempdir");
        PluginSpec::new("@scrypted/nvr", "1.0.0")
            .write(t.path())
            .expect("write");
        let pj = t.path().join("package.json");
        for (text, expect) in [
            ("{}", "has no \"name\""),
            ("{\"name\":\"@scrypted/other\"}", "config declares"),
            ("{\"name\":\"@scrypted/nvr\"}", "no \"version\""),
            (
                "{\"name\":\"@scrypted/nvr\",\"version\":\"1\"}",
                "no \"scrypted\"",
            ),
            ("[1]", "not a JSON object"),
            ("{", "not valid JSON"),
        ] {
            std::fs::write(&pj, text).expect("write");
            let err = validate(&decl(t.path(), "@scrypted/nvr")).expect_err(text);
            assert!(err.to_string().contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn damaged_zips_are_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        let spec = PluginSpec::new("p", "1.0.0");

        spec.write(t.path()).expect("write");
        fixture::truncate_zip(t.path(), 0.8).expect("truncate");
        assert!(matches!(
            validate(&decl(t.path(), "p")),
            Err(PluginError::Zip { .. })
        ));

        spec.write(t.path()).expect("write");
        fixture::corrupt_zip_data(t.path()).expect("corrupt");
        let err = validate(&decl(t.path(), "p")).expect_err("crc");
        assert!(matches!(err, PluginError::Zip { .. }), "{err}");

        let mut no_main = spec.clone();
        no_main.main_js = None;
        no_main.padding_bytes = 10;
        no_main.write(t.path()).expect("write");
        assert!(matches!(
            validate(&decl(t.path(), "p")),
            Err(PluginError::NoMain { .. })
        ));

        // A python plugin starts main.py: main.nodejs.js does not stand in for it.
        let pj = t.path().join("package.json");
        spec.write(t.path()).expect("write");
        std::fs::write(
            &pj,
            r#"{"name":"p","version":"1.0.0","scrypted":{"runtime":"python"}}"#,
        )
        .expect("write");
        assert!(matches!(
            validate(&decl(t.path(), "p")),
            Err(PluginError::NoMain {
                entry: PYTHON_ENTRY,
                ..
            })
        ));

        std::fs::remove_file(t.path().join("plugin.zip")).expect("rm");
        assert!(matches!(
            validate(&decl(t.path(), "p")),
            Err(PluginError::Read { .. })
        ));
    }
}
