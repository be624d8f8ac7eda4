//! The alias table, `nix/plugins/python-packages.json`: the one
//! hand-maintained piece of the Python mapping, read by nixgen and by
//! nix/python-plugin-environment.nix alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::requirements::normalise;

pub const PATH: &str = "nix/plugins/python-packages.json";

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Alias {
    /// The python3Packages attribute.
    pub attr: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aliases {
    /// By PEP 503 normalised name.
    packages: BTreeMap<String, Alias>,
    /// The `major.minor` of the Python the server runs plugins with.
    pub server_python: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    #[error("{PATH} is not a valid alias table")]
    Parse(#[source] serde_json::Error),
}

impl Aliases {
    pub fn parse(text: &str) -> Result<Self, AliasError> {
        serde_json::from_str(text).map_err(AliasError::Parse)
    }

    /// The table of the tree at `root`; `None` when it has none (a new
    /// tree), so that no Python plugin maps.
    pub fn load(root: &Path) -> Result<Option<Self>, AliasError> {
        let path = root.join(PATH);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AliasError::Read(path, e)),
        }
    }

    /// The attribute a requirement maps to, by any spelling of its name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.packages.get(&normalise(name)).map(|a| a.attr.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_table_maps_the_detection_plugins() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let t = Aliases::load(&root).expect("table").expect("present");
        assert_eq!(t.attr("opencv_python.Headless"), Some("opencv4"));
        assert_eq!(t.attr("onnxruntime-gpu"), Some("onnxruntime"));
        assert_eq!(t.attr("Pillow"), Some("pillow"));
        assert_eq!(t.attr("tflite-runtime"), None);
        assert!(Aliases::parse("{}").is_err());
    }
}
