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

/// One entry of a hand-built zip (stored, no compression), with header fields that
/// can lie about the data: the zips that pass a CRC check and still break
/// Scrypted's extractor (`docs/scrypted-api.md` §5).
#[derive(Debug, Clone, Default)]
pub struct RawEntry {
    pub name: String,
    pub data: Vec<u8>,
    /// Uncompressed size written in the local header instead of the real one.
    pub local_size: Option<u32>,
    /// Uncompressed size written in the central directory instead of the real one.
    pub central_size: Option<u32>,
}

impl RawEntry {
    pub fn new(name: &str, data: &[u8]) -> Self {
        Self {
            name: name.into(),
            data: data.to_vec(),
            ..Self::default()
        }
    }
}

/// The entries every test plugin has, so only the lie under test differs.
pub fn plugin_entries() -> Vec<RawEntry> {
    vec![RawEntry::new(
        "main.nodejs.js",
        b"exports.default = class Plugin {};\n",
    )]
}

/// Writes `entries` as a zip by hand (the zip crate refuses to write lies).
pub fn raw_zip(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len() as u32;
        let crc = crc32(&e.data);
        let len = e.data.len() as u32;
        let header = |sig: u32, size: u32| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if sig == 0x0201_4b50 {
                h.extend_from_slice(&20u16.to_le_bytes()); // version made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time and date
            h.extend_from_slice(&crc.to_le_bytes());
            // A stored entry's compressed size is its size: both lie together.
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra
            if sig == 0x0201_4b50 {
                h.extend_from_slice(&[0u8; 6]); // comment length, disk, internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(e.name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, e.local_size.unwrap_or(len)));
        out.extend_from_slice(&e.data);
        central.extend(header(0x0201_4b50, e.central_size.unwrap_or(len)));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // disk numbers
    let n = (entries.len() as u16).to_le_bytes();
    out.extend_from_slice(&n);
    out.extend_from_slice(&n);
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}

/// Writes a plugin directory whose zip is `raw_zip(entries)`.
pub fn write_raw_plugin(
    dir: &Path,
    name: &str,
    version: &str,
    entries: &[RawEntry],
) -> io::Result<()> {
    PluginSpec::new(name, version).write(dir)?;
    fs::write(dir.join("plugin.zip"), raw_zip(entries))
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
