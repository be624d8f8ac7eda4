//! `--verify`: download a tarball and check it is what the pin claims.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

use crate::classify::Pin;
use crate::registry::Sink;

/// A tarball on its way in: spooled to an anonymous temporary file (memory
/// stays flat whatever the size) and hashed as it arrives.
#[derive(Debug)]
pub struct Download {
    file: File,
    hasher: ssri::IntegrityOpts,
}

fn sha512_hasher() -> ssri::IntegrityOpts {
    ssri::IntegrityOpts::new().algorithm(ssri::Algorithm::Sha512)
}

impl Download {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile()?,
            hasher: sha512_hasher(),
        })
    }

    /// Checks the downloaded bytes against the pin; returns them, rewound.
    pub fn checked(self, pin: &Pin) -> Result<File, VerifyError> {
        let got = self.hasher.result().to_string();
        if got != pin.hash {
            return Err(VerifyError::Integrity {
                expected: pin.hash.clone(),
            });
        }
        let mut file = self.file;
        file.rewind().map_err(VerifyError::Archive)?;
        Ok(file)
    }

    /// Checks the downloaded bytes against the pin, then the archive.
    pub fn check(self, pin: &Pin) -> Result<(), VerifyError> {
        let file = self.checked(pin)?;
        check_archive(pin, io::BufReader::new(file))
    }
}

impl Sink for Download {
    fn reset(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.hasher = sha512_hasher();
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.input(chunk);
        self.file.write_all(chunk)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("tarball does not match {expected}")]
    Integrity { expected: String },
    #[error("cannot create a temporary file for the tarball")]
    Spool(#[source] io::Error),
    #[error("tarball is not a readable .tgz")]
    Archive(#[source] io::Error),
    #[error("tarball lacks {0}")]
    Missing(&'static str),
    #[error("package/package.json is not valid JSON")]
    PackageJson(#[source] serde_json::Error),
    #[error("package/package.json says {found}, expected {expected}")]
    Mismatch { expected: String, found: String },
}

const PACKAGE_JSON: &str = "package/package.json";
const PLUGIN_ZIP: &str = "package/dist/plugin.zip";
/// package.json is tiny; a huge one is an attack, not a package.
const PACKAGE_JSON_LIMIT: u64 = 4 << 20;

/// Checks the archive holds the plugin the pin names.
pub fn check_archive(pin: &Pin, tgz: impl Read) -> Result<(), VerifyError> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut manifest = None;
    let mut has_zip = false;
    for entry in archive.entries().map_err(VerifyError::Archive)? {
        let mut entry = entry.map_err(VerifyError::Archive)?;
        let path = entry
            .path()
            .map_err(VerifyError::Archive)?
            .to_string_lossy()
            .into_owned();
        let is_file = entry.header().entry_type().is_file();
        if path == PLUGIN_ZIP && is_file {
            has_zip = true;
        } else if path == PACKAGE_JSON && is_file {
            let mut buf = Vec::new();
            (&mut entry)
                .take(PACKAGE_JSON_LIMIT)
                .read_to_end(&mut buf)
                .map_err(VerifyError::Archive)?;
            manifest = Some(buf);
        }
    }
    let manifest = manifest.ok_or(VerifyError::Missing(PACKAGE_JSON))?;
    if !has_zip {
        return Err(VerifyError::Missing(PLUGIN_ZIP));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(VerifyError::PackageJson)?;
    let found = format!(
        "{}@{}",
        json.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
        json.get("version").and_then(|v| v.as_str()).unwrap_or("?")
    );
    let expected = format!("{}@{}", pin.name.npm(), pin.version);
    if found != expected {
        return Err(VerifyError::Mismatch {
            expected,
            found: crate::escape::nix_comment(&found),
        });
    }
    Ok(())
}
