//! Python plugins: what Scrypted would pip-install when one starts
//! (requirements.txt in its zip), decided at update time for each Linux
//! platform the tree supports and mapped to nixpkgs through the alias table
//! (`nix/plugins/python-packages.json`). The result is either the
//! requirements to render (`python.requirements` in package.nix, built by
//! nix/python-plugin-environment.nix) or the reasons the plugin still needs
//! pip at start.

pub mod aliases;
pub mod marker;
pub mod models;
pub mod requirements;

use std::collections::BTreeSet;

pub use aliases::Aliases;
use marker::Environment;
use requirements::Line;

/// Nix system and `platform.machine()` of each platform the tree supports.
pub const PLATFORMS: [(&str, Environment); 2] = [
    ("x86_64-linux", Environment { machine: "x86_64" }),
    ("aarch64-linux", Environment { machine: "aarch64" }),
];

/// One requirement as package.nix records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub name: String,
    pub pin: Option<String>,
    /// The Nix systems whose marker holds; `None` for all of them.
    pub platforms: Option<Vec<&'static str>>,
}

/// What nixgen makes of a Python plugin's requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every requirement line, in file order; rendered only when `needs` is
    /// empty.
    pub requirements: Vec<Recorded>,
    /// Why pip would still run at start (sorted sentences); empty when
    /// nixpkgs provides everything.
    pub needs: Vec<String>,
}

/// What Scrypted would still fetch for a plugin asking for Python
/// `version`, other than the one the server runs.
pub fn other_python(version: &str, server: &str) -> String {
    format!(
        "a portable Python {version} download at start (the server runs nixpkgs' Python {server})"
    )
}

/// Decides `requirements_txt` for every platform.
pub fn plan(requirements_txt: &str, aliases: &Aliases) -> Plan {
    let mut needs = BTreeSet::new();
    let mut requirements = Vec::new();
    let mut unmapped = BTreeSet::new();
    for line in requirements::parse(requirements_txt) {
        let r = match line {
            Line::Requirement(r) => r,
            Line::Option(option) => {
                needs.insert(format!(
                    "pip install at start: requirements.txt uses {option} (another package index or file)"
                ));
                continue;
            }
            Line::Url(_) => {
                needs
                    .insert("pip install at start: requirements.txt names a package by URL".into());
                continue;
            }
            Line::Unreadable(_) => {
                needs.insert(
                    "pip install at start: requirements.txt has a line nixgen cannot read".into(),
                );
                continue;
            }
        };
        let platforms = match platforms_of(r.marker.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                needs.insert(format!("pip install at start: {} has a {e}", r.name));
                continue;
            }
        };
        let applies = platforms.as_ref().is_none_or(|p| !p.is_empty());
        if applies && aliases.attr(&r.name).is_none() {
            unmapped.insert(r.name.clone());
        }
        requirements.push(Recorded {
            name: r.name,
            pin: r.pin,
            platforms,
        });
    }
    if !unmapped.is_empty() {
        let names: Vec<_> = unmapped.into_iter().collect();
        needs.insert(format!(
            "pip install at start: no nixpkgs package for {} in nix/plugins/python-packages.json",
            names.join(", ")
        ));
    }
    Plan {
        requirements,
        needs: needs.into_iter().collect(),
    }
}

/// `None` when the requirement holds on every platform.
fn platforms_of(marker: Option<&str>) -> Result<Option<Vec<&'static str>>, marker::MarkerError> {
    let Some(marker) = marker else {
        return Ok(None);
    };
    let mut holds = Vec::new();
    for (system, env) in PLATFORMS {
        if marker::evaluate(marker, env)? {
            holds.push(system);
        }
    }
    Ok((holds.len() != PLATFORMS.len()).then_some(holds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Aliases {
        Aliases::parse(
            r#"{"base": ["ptpython", "wheel"], "serverPython": "3.13", "packages": {
                "onnxruntime": {"attr": "onnxruntime"},
                "onnxruntime-gpu": {"attr": "onnxruntime"},
                "pillow": {"attr": "pillow"}}}"#,
        )
        .expect("table")
    }

    #[test]
    fn onnx_maps_with_platforms() {
        let p = plan(
            "onnxruntime-gpu==1.22.0; 'darwin' not in sys_platform and platform_machine != 'aarch64'\nonnxruntime; 'darwin' in sys_platform or platform_machine == 'aarch64'\nPillow==10.3.0\ncoremltools; sys_platform == 'darwin'\n",
            &table(),
        );
        assert!(p.needs.is_empty(), "{:?}", p.needs);
        let platforms: Vec<_> = p.requirements.iter().map(|r| r.platforms.clone()).collect();
        assert_eq!(
            platforms,
            [
                Some(vec!["x86_64-linux"]),
                Some(vec!["aarch64-linux"]),
                None,
                Some(vec![])
            ]
        );
        assert_eq!(p.requirements[0].pin.as_deref(), Some("1.22.0"));
    }

    #[test]
    fn tensorflow_lite_and_rknn_say_why() {
        let p = plan(
            "--extra-index-url https://google-coral.github.io/py-repo/\nnumpy==1.26.4\npycoral~=2.0\ntflite-runtime==2.5.0.post1\nPillow==10.3.0\nrknn @ https://github.com/x/rknn.whl\nfoo; python_version < '3.10'\n",
            &table(),
        );
        assert_eq!(
            p.needs,
            [
                "pip install at start: foo has a marker variable python_version cannot be decided at update time",
                "pip install at start: no nixpkgs package for numpy, pycoral, tflite-runtime in nix/plugins/python-packages.json",
                "pip install at start: requirements.txt names a package by URL",
                "pip install at start: requirements.txt uses --extra-index-url (another package index or file)",
            ]
        );
    }
}
