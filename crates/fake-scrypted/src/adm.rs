//! How Scrypted's extractor (adm-zip) fails on zips that pass a CRC check
//! (`docs/scrypted-api.md` §5), reproduced from the zip's own headers.

use std::collections::BTreeSet;
use std::io::{Cursor, Read};

/// What extracting a zip does to the real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extraction {
    /// Extracts; `loaded` tells whether it has a main module.
    Ok { loaded: bool },
    /// `500 ADM-ZIP: Invalid or unsupported zip format`.
    Invalid,
    /// A size field disagrees with the data: `500 ADM-ZIP: CRC32 checksum failed`.
    Crc(String),
    /// A file is also a directory of another entry: `500 ENOTDIR`.
    NotDirectory(String),
    /// An entry of 2 GiB or more: the main process throws and stops answering.
    Huge(String),
}

impl Extraction {
    /// The answer the deploy gets, for the failures.
    pub fn error_body(&self) -> Option<String> {
        match self {
            Self::Ok { .. } => None,
            Self::Invalid => Some("Error: ADM-ZIP: Invalid or unsupported zip format".into()),
            Self::Crc(e) => Some(format!("Error: ADM-ZIP: CRC32 checksum failed \"{e}\"")),
            Self::NotDirectory(p) => Some(format!(
                "Error: ENOTDIR: not a directory, open 'zip.tmp/unzipped/{p}'"
            )),
            Self::Huge(_) => Some(
                "RangeError [ERR_OUT_OF_RANGE]: The value of \"size\" is out of range. It must be >= 0 && <= 2147483647"
                    .into(),
            ),
        }
    }
}

const HUGE: u64 = 1 << 31;

pub fn extract(zip: &[u8]) -> Extraction {
    let Ok(mut archive) = zip::ZipArchive::new(Cursor::new(zip)) else {
        return Extraction::Invalid;
    };
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let Ok(entry) = archive.by_index_raw(i) else {
            return Extraction::Invalid;
        };
        let name = entry.name().to_string();
        if entry.size() >= HUGE {
            return Extraction::Huge(name);
        }
        if !local_sizes_agree(
            zip,
            entry.header_start(),
            entry.compressed_size(),
            entry.size(),
        ) {
            return Extraction::Crc(name);
        }
        names.push(name);
    }
    for i in 0..archive.len() {
        let Ok(mut entry) = archive.by_index(i) else {
            return Extraction::Invalid;
        };
        let (name, declared) = (entry.name().to_string(), entry.size());
        let mut real = 0u64;
        let mut buf = [0u8; 8192];
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => real += n as u64,
                Err(_) => return Extraction::Crc(name),
            }
        }
        if real != declared {
            return Extraction::Crc(name);
        }
    }
    if let Some(p) = file_under_file(&names) {
        return Extraction::NotDirectory(p);
    }
    Extraction::Ok {
        loaded: names.iter().any(|n| n == "main.nodejs.js"),
    }
}

/// The sizes in the local header at `at` (unless they are deferred to a data
/// descriptor) against the central directory's.
fn local_sizes_agree(zip: &[u8], at: u64, compressed: u64, size: u64) -> bool {
    let at = at as usize;
    let Some(h) = zip.get(at..at + 30) else {
        return false;
    };
    let field = |o: usize| u64::from(u32::from_le_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]));
    let deferred = h[6] & 0x08 != 0;
    let zip64 = field(18) == 0xFFFF_FFFF || field(22) == 0xFFFF_FFFF;
    deferred || zip64 || (field(18) == compressed && field(22) == size)
}

/// The first path written under an entry that is a file.
fn file_under_file(names: &[String]) -> Option<String> {
    let files: BTreeSet<&str> = names
        .iter()
        .filter(|n| !n.ends_with('/'))
        .map(String::as_str)
        .collect();
    names.iter().find_map(|n| {
        n.match_indices('/')
            .any(|(i, _)| files.contains(&n[..i]))
            .then(|| n.clone())
    })
}
