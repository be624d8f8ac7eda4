//! What a plugin still fetches at runtime, found by looking for known
//! patterns in the JavaScript and Python of its `plugin.zip`. It finds known
//! patterns; it cannot prove a plugin fetches nothing else. The same pass
//! reads a Python plugin's requirements.txt.

use std::io::{self, Read, Seek};

/// Recorded for a plugin whose zip could not be looked at; such plugins are
/// scanned again on the next run.
pub const NOT_SCANNED: &str = "unknown: its plugin.zip could not be scanned";

/// A need found in the zip: its sentence, and the byte patterns that show
/// it (any of the groups, each group all of its patterns).
struct Marker {
    need: &'static str,
    any_of: &'static [&'static [&'static str]],
}

const MARKERS: &[Marker] = &[
    Marker {
        need: "model downloads from huggingface.co",
        // Python plugins name the hub's client, not its host.
        any_of: &[&["huggingface.co"], &["huggingface_hub"]],
    },
    Marker {
        need: "downloads from GitHub releases",
        any_of: &[&["github.com/", "/releases/download/"]],
    },
    Marker {
        need: "npm registry access",
        any_of: &[&["registry.npmjs.org"], &["installNpm"]],
    },
    Marker {
        need: "pip installs",
        any_of: &[&["pip install"]],
    },
];

/// The sentences [`scan_zip`] can produce, for reading them back.
pub fn known(need: &str) -> bool {
    MARKERS.iter().any(|m| m.need == need)
}

/// The need for optionalDependencies nixgen could not pin.
pub fn native_install(names: &[&str]) -> String {
    format!(
        "npm install of its native dependencies ({}) at every load",
        names.join(", ")
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("tarball is not a readable .tgz")]
    Archive(#[source] io::Error),
    #[error("tarball lacks package/dist/plugin.zip")]
    NoZip,
    #[error("plugin.zip is not a readable zip")]
    Zip(#[source] zip::result::ZipError),
}

const PLUGIN_ZIP: &str = "package/dist/plugin.zip";
/// One script larger than this is skipped rather than read into memory.
const SCRIPT_LIMIT: u64 = 256 << 20;

/// What one pass over a plugin.zip found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Sorted sentences.
    pub needs: Vec<String>,
    /// requirements.txt at the top of the zip, as text.
    pub requirements: Option<String>,
    /// The models a Python plugin downloads from `scrypted/plugin-models` by
    /// default ([`crate::python::models`]).
    pub models: Vec<String>,
}

/// Largest requirements.txt read: real ones are a few hundred bytes.
const REQUIREMENTS_LIMIT: u64 = 1 << 20;

/// Scans the scripts of the plugin.zip inside an npm tarball.
pub fn scan_tarball(tgz: impl Read) -> Result<Scanned, ScanError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    for entry in archive.entries().map_err(ScanError::Archive)? {
        let mut entry = entry.map_err(ScanError::Archive)?;
        let path = entry.path().map_err(ScanError::Archive)?;
        if path.to_string_lossy() != PLUGIN_ZIP || !entry.header().entry_type().is_file() {
            continue;
        }
        let mut zip = tempfile::tempfile().map_err(ScanError::Archive)?;
        io::copy(&mut entry, &mut zip).map_err(ScanError::Archive)?;
        zip.rewind().map_err(ScanError::Archive)?;
        return scan_zip(io::BufReader::new(zip));
    }
    Err(ScanError::NoZip)
}

/// Scans every `.js` and `.py` entry of a zip, and reads requirements.txt.
pub fn scan_zip(zip: impl Read + Seek) -> Result<Scanned, ScanError> {
    let mut archive = zip::ZipArchive::new(zip).map_err(ScanError::Zip)?;
    let requirements = requirements(&mut archive)?;
    let mut found = vec![false; MARKERS.len()];
    let mut models = crate::python::models::Finder::default();
    let mut buf = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(ScanError::Zip)?;
        let script = file.name().ends_with(".js") || file.name().ends_with(".py");
        if !file.is_file() || !script || file.size() > SCRIPT_LIMIT {
            continue;
        }
        buf.clear();
        (&mut file)
            .take(SCRIPT_LIMIT)
            .read_to_end(&mut buf)
            .map_err(|e| ScanError::Zip(e.into()))?;
        for (hit, marker) in found.iter_mut().zip(MARKERS) {
            *hit = *hit || matches(&buf, marker);
        }
        if file.name().ends_with(".py") {
            models.read(&String::from_utf8_lossy(&buf));
        }
    }
    let mut needs: Vec<String> = MARKERS
        .iter()
        .zip(found)
        .filter(|(_, hit)| *hit)
        .map(|(m, _)| m.need.to_owned())
        .collect();
    needs.sort();
    Ok(Scanned {
        needs,
        requirements,
        models: models.finish(),
    })
}

/// requirements.txt, which Scrypted reads from the zip's top level. Not UTF-8
/// is an error: pip would not read it either.
fn requirements<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
) -> Result<Option<String>, ScanError> {
    let file = match archive.by_name("requirements.txt") {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ScanError::Zip(e)),
    };
    let mut text = String::new();
    file.take(REQUIREMENTS_LIMIT)
        .read_to_string(&mut text)
        .map_err(|e| ScanError::Zip(e.into()))?;
    Ok(Some(text))
}

fn matches(haystack: &[u8], marker: &Marker) -> bool {
    marker
        .any_of
        .iter()
        .any(|group| group.iter().all(|p| contains(haystack, p.as_bytes())))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn zip_of(files: &[(&str, &str)]) -> io::Cursor<Vec<u8>> {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, text) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start");
            w.write_all(text.as_bytes()).expect("write");
        }
        let mut c = w.finish().expect("finish");
        c.set_position(0);
        c
    }

    #[test]
    fn finds_known_patterns_in_scripts_only() {
        let z = zip_of(&[
            ("main.nodejs.js", "fetch('https://huggingface.co/x')"),
            ("lib/a.js", "https://github.com/o/r/releases/download/v1/x"),
            ("README.txt", "pip install x"),
        ]);
        assert_eq!(
            scan_zip(z).expect("scan").needs,
            [
                "downloads from GitHub releases",
                "model downloads from huggingface.co"
            ]
        );
        let z = zip_of(&[("main.nodejs.js", "github.com/ only; installNpm(x)")]);
        assert_eq!(scan_zip(z).expect("scan").needs, ["npm registry access"]);
        assert_eq!(
            scan_zip(zip_of(&[("main.nodejs.js", "x")])).expect("scan"),
            Scanned::default()
        );
        assert!(known("pip installs") && !known(NOT_SCANNED));
    }

    #[test]
    fn python_plugins_hub_client_and_requirements() {
        let z = zip_of(&[
            ("main.py", "import predict"),
            (
                "predict/__init__.py",
                "from huggingface_hub import snapshot_download",
            ),
            ("requirements.txt", "Pillow==10.3.0"),
            ("sub/requirements.txt", "other"),
        ]);
        assert_eq!(
            scan_zip(z).expect("scan"),
            Scanned {
                needs: vec!["model downloads from huggingface.co".into()],
                requirements: Some("Pillow==10.3.0".into()),
                models: Vec::new(),
            }
        );
    }
}
