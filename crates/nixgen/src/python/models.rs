//! Which models a Python plugin downloads from the Hugging Face repository
//! `scrypted/plugin-models` by default, read from its source at the pinned
//! version (the detection plugins' `predict/__init__.py` calls
//! `snapshot_download(repo_id="scrypted/plugin-models",
//! allow_patterns=f"{plugin}/{model}/*")`). Static reading, no Python run:
//! - every string literal given to a model-loading call
//!   (`downloadHuggingFaceModelLocalFallback("clip")`,
//!   `downloadModel("a" if relu else "b")`): the secondary devices' models;
//! - every `model = "<literal>"` inside an `if model == "Default"` block: the
//!   main detector's default, which may depend on the hardware (openvino
//!   picks one of three), so all of them.
//!
//! A model chosen by a setting other than the default is not found, and
//! stays a download.

use std::collections::BTreeSet;

/// The repository the plugins download from.
pub const REPOSITORY: &str = "scrypted/plugin-models";

const LOADERS: [&str; 4] = [
    "downloadHuggingFaceModelLocalFallback(",
    "downloadHuggingFaceModel(",
    "downloadModel(",
    "loadModel(",
];

/// Collects model names over a plugin's Python files.
#[derive(Debug, Default)]
pub struct Finder {
    uses_repository: bool,
    models: BTreeSet<String>,
}

impl Finder {
    /// Reads one `.py` file.
    pub fn read(&mut self, source: &str) {
        self.uses_repository |= source.contains(REPOSITORY);
        let mut default_block: Option<usize> = None;
        for line in source.lines() {
            let indent = line.len() - line.trim_start().len();
            let code = line.trim();
            if code.is_empty() || code.starts_with('#') {
                continue;
            }
            if default_block.is_some_and(|at| indent <= at) {
                default_block = None;
            }
            if code.starts_with("if model == \"Default\"")
                || code.starts_with("if model == 'Default'")
            {
                default_block = Some(indent);
            } else if default_block.is_some()
                && let Some(value) = code.strip_prefix("model = ")
            {
                self.add_literals(value);
            }
            for loader in LOADERS {
                if let Some(at) = code.find(loader) {
                    self.add_literals(&code[at + loader.len()..]);
                }
            }
        }
    }

    /// The models found, sorted; empty when the plugin does not download
    /// from [`REPOSITORY`].
    pub fn finish(self) -> Vec<String> {
        if self.uses_repository {
            self.models.into_iter().collect()
        } else {
            Vec::new()
        }
    }

    /// Adds the string literals of `text` up to its closing parenthesis that
    /// are plausible model directory names.
    fn add_literals(&mut self, text: &str) {
        let mut depth = 0usize;
        let mut chars = text.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => return,
                ')' => depth -= 1,
                '"' | '\'' => {
                    let Some(len) = text[i + 1..].find(c) else {
                        return;
                    };
                    let literal = &text[i + 1..i + 1 + len];
                    let plausible = !literal.is_empty()
                        && literal.len() <= 100
                        && literal
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                        && !literal.starts_with('.');
                    if plausible {
                        self.models.insert(literal.to_owned());
                    }
                    chars.nth(len);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_secondary_models_of_a_detection_plugin() {
        let mut f = Finder::default();
        f.read("local_path = snapshot_download(\n    repo_id=\"scrypted/plugin-models\",\n)\n");
        f.read(
            "        model = self.storage.getItem(\"model\") or \"Default\"\n        if model == \"Default\" or model not in availableModels:\n            if model != \"Default\":\n                self.storage.setItem(\"model\", \"Default\")\n            if arc:\n                model = \"scrypted_yolov9c_relu_test_int8\"\n            else:\n                model = 'scrypted_yolov9t_relu_test_int8'\n        model = \"not_a_default\"\n        model_path = self.downloadHuggingFaceModelLocalFallback(model)\n",
        );
        f.read("        self.detectModel = self.downloadModel(\"face_320\" if self.prefer_relu else \"face_silu\")\n        self.faceModel = self.downloadModel(\"inception_resnet_v1\")\n        path = self.downloadHuggingFaceModelLocalFallback(\"clip\")\n        x = self.loadModel(\"../etc\")\n");
        assert_eq!(
            f.finish(),
            [
                "clip",
                "face_320",
                "face_silu",
                "inception_resnet_v1",
                "scrypted_yolov9c_relu_test_int8",
                "scrypted_yolov9t_relu_test_int8",
            ]
        );
    }

    #[test]
    fn nothing_without_the_repository() {
        let mut f = Finder::default();
        f.read("self.downloadModel(\"craft\")\n");
        assert!(f.finish().is_empty());
    }
}
