//! Test plugins: a directory with `package.json` and `plugin.zip`, shaped like the
//! output of the Nix plugin packages.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use zip::write::SimpleFileOptions;

#[derive(Debug, Clone)]
pub struct PluginSpec {
    pub name: String,
    pub version: String,
    /// Contents of `main.nodejs.js`; None leaves it out of the zip.
    pub main_js: Option<String>,
    /// Size of an extra stored (uncompressed) entry, to make big zips cheaply.
    pub padding_bytes: u64,
}

impl PluginSpec {
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            main_js: Some(format!(
                "// {name} {version}\nexports.default = class Plugin {{}};\n"
            )),
            padding_bytes: 0,
        }
    }

    pub fn package_json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "version": self.version,
            "description": "test plugin",
            "scrypted": {
                "name": format!("Test {}", self.name),
                "type": "API",
                "interfaces": ["Settings"],
            },
        })
    }

    /// Writes `dir/package.json` and `dir/plugin.zip`, creating `dir`.
    pub fn write(&self, dir: &Path) -> io::Result<PathBuf> {
        fs::create_dir_all(dir)?;
        let pj = serde_json::to_vec_pretty(&self.package_json()).map_err(io::Error::other)?;
        fs::write(dir.join("package.json"), pj)?;
        let mut zip = zip::ZipWriter::new(File::create(dir.join("plugin.zip"))?);
        let deflated = SimpleFileOptions::default();
        if let Some(main) = &self.main_js {
            zip.start_file("main.nodejs.js", deflated)?;
            zip.write_all(main.as_bytes())?;
            zip.start_file("main.nodejs.js.map", deflated)?;
            zip.write_all(b"{\"version\":3,\"mappings\":\"\"}")?;
        }
        if self.padding_bytes > 0 {
            let stored = SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored)
                .large_file(self.padding_bytes >= u32::MAX as u64);
            zip.start_file("fs/padding.bin", stored)?;
            let mut rng = fastrand::Rng::with_seed(self.padding_bytes);
            let mut block = vec![0u8; 64 * 1024];
            let mut left = self.padding_bytes;
            while left > 0 {
                rng.fill(&mut block);
                let n = left.min(block.len() as u64) as usize;
                zip.write_all(&block[..n])?;
                left -= n as u64;
            }
        }
        zip.finish()?;
        Ok(dir.to_path_buf())
    }
}

/// Cuts `plugin.zip` in `dir` to `keep` of its length (a truncated download).
pub fn truncate_zip(dir: &Path, keep: f64) -> io::Result<()> {
    let path = dir.join("plugin.zip");
    let len = fs::metadata(&path)?.len();
    let f = fs::OpenOptions::new().write(true).open(&path)?;
    f.set_len((len as f64 * keep) as u64)
}

/// Flips one byte inside the first entry's data so the central directory still
/// reads but the CRC check fails.
pub fn corrupt_zip_data(dir: &Path) -> io::Result<()> {
    let path = dir.join("plugin.zip");
    let mut bytes = fs::read(&path)?;
    // Local header is 30 bytes plus the name; the data follows.
    let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
    let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
    let at = 30 + name_len + extra_len + 2;
    bytes[at] ^= 0xff;
    fs::write(&path, bytes)
}
