//! Refuses every zip Scrypted's extractor would choke on (`docs/scrypted-api.md` §5).
//!
//! Scrypted kills the running plugin before it extracts the new zip, so a zip it
//! cannot extract leaves the plugin down. The zip crate hides what matters here
//! (it keeps one of two entries with the same name and never reads the sizes in the
//! local headers), so the archive structure is read directly: the end of central
//! directory record, every central directory record, every local header, and every
//! entry's data, which is inflated to check its real sizes and CRC.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// One entry of 2^31 bytes or more makes Scrypted's main process throw and hang.
pub const MAX_ENTRY_BYTES: u64 = (1 << 31) - 1;
/// Total uncompressed size accepted. No plugin comes near it, and Scrypted holds a
/// whole entry in memory while extracting it.
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;
/// General purpose flag: sizes and CRC follow the data in a data descriptor.
const HAS_DESCRIPTOR: u16 = 1 << 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZipProblem {
    #[error("not a zip, or truncated: {0}")]
    Structure(String),
    #[error("entry {0:?} appears more than once")]
    Duplicate(String),
    #[error("{file:?} is a file and also a directory of {other:?}")]
    FileIsDirectory { file: String, other: String },
    #[error(
        "entry {name:?} is {size} bytes uncompressed; Scrypted cannot extract an entry of 2 GiB or more"
    )]
    EntryTooLarge { name: String, size: u64 },
    #[error("{total} bytes uncompressed in total, over the cap of {MAX_TOTAL_BYTES}")]
    TotalTooLarge { total: u64 },
    #[error("entry {name:?} uses compression method {method}; only stored and deflate extract")]
    Method { name: String, method: u16 },
    #[error(
        "entry {name:?}: {field} in the {header} is {found}, the central directory says {expected}"
    )]
    Mismatch {
        name: String,
        field: &'static str,
        header: &'static str,
        found: u64,
        expected: u64,
    },
    #[error("entry {name:?} is damaged: {why}")]
    Damaged { name: String, why: String },
}

/// One central directory record, with what the checks need.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
}

/// What the local header of an entry says.
#[derive(Debug)]
struct Local {
    crc: u32,
    compressed: u64,
    size: u64,
    data_start: u64,
}

/// Checks the whole zip; returns the entry names on success.
pub fn check<R: Read + Seek>(reader: R) -> Result<Vec<String>, ZipProblem> {
    let mut r = BufReader::with_capacity(64 * 1024, reader);
    let (entries, cd_start) = central_directory(&mut r).map_err(structure)?;
    check_names(&entries)?;
    check_sizes(&entries)?;
    // Entries in file order: each one's data must end where the next record starts.
    let mut by_offset: Vec<&Entry> = entries.iter().collect();
    by_offset.sort_by_key(|e| e.offset);
    for (i, e) in by_offset.iter().enumerate() {
        let next = by_offset.get(i + 1).map_or(cd_start, |n| n.offset);
        check_entry(&mut r, e, next)?;
    }
    Ok(entries.into_iter().map(|e| e.name).collect())
}

fn structure(e: io::Error) -> ZipProblem {
    ZipProblem::Structure(e.to_string())
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

fn read_at<R: Read + Seek>(r: &mut R, at: u64, len: usize) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// The central directory's records and where it starts.
fn central_directory<R: Read + Seek>(r: &mut R) -> io::Result<(Vec<Entry>, u64)> {
    let (count, cd_start) = end_of_central_directory(r)?;
    r.seek(SeekFrom::Start(cd_start))?;
    let mut entries = Vec::new();
    for _ in 0..count {
        entries.push(central_record(r)?);
    }
    Ok((entries, cd_start))
}

/// Entry count and central directory offset, from the (zip64) end record.
fn end_of_central_directory<R: Read + Seek>(r: &mut R) -> io::Result<(u64, u64)> {
    let len = r.seek(SeekFrom::End(0))?;
    // The end record is 22 bytes plus a comment of at most 65535.
    let tail_len = len.min(22 + 65_535);
    let tail = read_at(r, len - tail_len, tail_len as usize)?;
    let pos = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == EOCD_SIG)
        .ok_or_else(|| bad("no end of central directory record"))?;
    let count = u64::from(u16_at(&tail, pos + 10));
    let offset = u64::from(u32_at(&tail, pos + 16));
    if count != 0xFFFF && offset != 0xFFFF_FFFF {
        return Ok((count, offset));
    }
    let eocd_at = len - tail_len + pos as u64;
    let locator = read_at(r, eocd_at.checked_sub(20).ok_or_else(|| bad("zip64"))?, 20)?;
    if u32_at(&locator, 0) != ZIP64_LOCATOR_SIG {
        return Err(bad("zip64 end record locator missing"));
    }
    let end64 = read_at(r, u64_at(&locator, 8), 56)?;
    if u32_at(&end64, 0) != ZIP64_EOCD_SIG {
        return Err(bad("zip64 end record missing"));
    }
    Ok((u64_at(&end64, 32), u64_at(&end64, 48)))
}

/// Reads one central directory record at the reader's position.
fn central_record<R: Read>(r: &mut R) -> io::Result<Entry> {
    let mut fixed = [0u8; 46];
    r.read_exact(&mut fixed)?;
    if u32_at(&fixed, 0) != CENTRAL_SIG {
        return Err(bad("central directory record expected"));
    }
    let mut name = vec![0u8; usize::from(u16_at(&fixed, 28))];
    r.read_exact(&mut name)?;
    let mut extra = vec![0u8; usize::from(u16_at(&fixed, 30))];
    r.read_exact(&mut extra)?;
    io::copy(&mut r.take(u64::from(u16_at(&fixed, 32))), &mut io::sink())?;
    let mut wide = [
        u64::from(u32_at(&fixed, 24)),
        u64::from(u32_at(&fixed, 20)),
        u64::from(u32_at(&fixed, 42)),
    ];
    apply_zip64(&extra, &mut wide);
    Ok(Entry {
        name: String::from_utf8_lossy(&name).into_owned(),
        flags: u16_at(&fixed, 8),
        method: u16_at(&fixed, 10),
        crc: u32_at(&fixed, 16),
        size: wide[0],
        compressed: wide[1],
        offset: wide[2],
    })
}

/// Replaces 0xFFFFFFFF fields (uncompressed size, compressed size, offset, in that
/// order) with their values from the zip64 extra field.
fn apply_zip64(extra: &[u8], fields: &mut [u64]) {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (u16_at(extra, at), usize::from(u16_at(extra, at + 2)));
        let body = &extra[at + 4..(at + 4 + len).min(extra.len())];
        if id == 1 {
            let mut pos = 0;
            for f in fields.iter_mut().filter(|f| **f == 0xFFFF_FFFF) {
                if pos + 8 <= body.len() {
                    *f = u64_at(body, pos);
                    pos += 8;
                }
            }
            return;
        }
        at += 4 + len;
    }
}

/// Duplicates, and a file that is also a directory prefix of another entry.
fn check_names(entries: &[Entry]) -> Result<(), ZipProblem> {
    let mut seen = BTreeSet::new();
    // Every directory some entry needs, and one entry that needs it.
    let mut dirs = BTreeMap::new();
    for e in entries {
        if !seen.insert(e.name.as_str()) {
            return Err(ZipProblem::Duplicate(e.name.clone()));
        }
        let trimmed = e.name.trim_end_matches('/');
        for (i, _) in trimmed.match_indices('/') {
            dirs.entry(&trimmed[..i]).or_insert(e.name.as_str());
        }
        if e.name.ends_with('/') {
            dirs.entry(trimmed).or_insert(e.name.as_str());
        }
    }
    let conflict = entries
        .iter()
        .filter(|e| !e.name.ends_with('/'))
        .find_map(|e| dirs.get(e.name.as_str()).map(|other| (e, *other)));
    match conflict {
        Some((e, other)) => Err(ZipProblem::FileIsDirectory {
            file: e.name.clone(),
            other: other.to_string(),
        }),
        None => Ok(()),
    }
}

/// Declared sizes, before anything is inflated: a zip bomb is refused unread.
fn check_sizes(entries: &[Entry]) -> Result<(), ZipProblem> {
    let mut total: u64 = 0;
    for e in entries {
        if e.size > MAX_ENTRY_BYTES {
            return Err(ZipProblem::EntryTooLarge {
                name: e.name.clone(),
                size: e.size,
            });
        }
        if e.method != STORED && e.method != DEFLATED {
            return Err(ZipProblem::Method {
                name: e.name.clone(),
                method: e.method,
            });
        }
        total = total.saturating_add(e.size);
    }
    if total > MAX_TOTAL_BYTES {
        return Err(ZipProblem::TotalTooLarge { total });
    }
    Ok(())
}

fn check_entry<R: Read + Seek>(r: &mut R, e: &Entry, next: u64) -> Result<(), ZipProblem> {
    let damaged = |why: String| ZipProblem::Damaged {
        name: e.name.clone(),
        why,
    };
    let local = local_header(r, e.offset).map_err(|x| damaged(x.to_string()))?;
    if e.flags & HAS_DESCRIPTOR == 0 {
        compare(e, "local header", local.crc, local.compressed, local.size)?;
    }
    r.seek(SeekFrom::Start(local.data_start))
        .map_err(|x| damaged(x.to_string()))?;
    let (crc, compressed, size) = inflate(r, e).map_err(|x| damaged(x.to_string()))?;
    compare(e, "data", crc, compressed, size)?;
    let mut end = local.data_start + e.compressed;
    if e.flags & HAS_DESCRIPTOR != 0 {
        r.seek(SeekFrom::Start(end))
            .map_err(|x| damaged(x.to_string()))?;
        end += descriptor(r, e)?;
    }
    if end != next {
        return Err(damaged(format!(
            "its data ends at byte {end}, but the next record starts at {next}"
        )));
    }
    Ok(())
}

fn local_header<R: Read + Seek>(r: &mut R, offset: u64) -> io::Result<Local> {
    let fixed = read_at(r, offset, 30)?;
    if u32_at(&fixed, 0) != LOCAL_SIG {
        return Err(bad("no local header where the central directory points"));
    }
    let name_len = u64::from(u16_at(&fixed, 26));
    let extra_len = usize::from(u16_at(&fixed, 28));
    let extra = read_at(r, offset + 30 + name_len, extra_len)?;
    let mut wide = [u64::from(u32_at(&fixed, 22)), u64::from(u32_at(&fixed, 18))];
    apply_zip64(&extra, &mut wide);
    Ok(Local {
        crc: u32_at(&fixed, 14),
        size: wide[0],
        compressed: wide[1],
        data_start: offset + 30 + name_len + extra_len as u64,
    })
}

/// The CRC, compressed length and uncompressed length the data really has.
fn inflate<R: Read>(r: &mut R, e: &Entry) -> io::Result<(u32, u64, u64)> {
    let mut crc = flate2::Crc::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut count = |reader: &mut dyn Read| -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            crc.update(&buf[..n]);
            total += n as u64;
        }
    };
    if e.method == STORED {
        // Stored data longer than declared shows as a gap before the next record.
        let size = count(&mut r.take(e.compressed))?;
        return Ok((crc.sum(), size, size));
    }
    // One byte more than declared, so a stream longer than declared shows.
    let mut decoder = flate2::read::DeflateDecoder::new(r.take(e.compressed.saturating_add(1)));
    let size = count(&mut decoder)?;
    Ok((crc.sum(), decoder.total_in(), size))
}

fn compare(
    e: &Entry,
    header: &'static str,
    crc: u32,
    compressed: u64,
    size: u64,
) -> Result<(), ZipProblem> {
    for (field, found, expected) in [
        ("the CRC", u64::from(crc), u64::from(e.crc)),
        ("the compressed size", compressed, e.compressed),
        ("the uncompressed size", size, e.size),
    ] {
        if found != expected {
            return Err(ZipProblem::Mismatch {
                name: e.name.clone(),
                field,
                header,
                found,
                expected,
            });
        }
    }
    Ok(())
}

/// Checks the data descriptor that follows an entry's data (the reader is right
/// after the data); returns its length.
fn descriptor<R: Read>(r: &mut R, e: &Entry) -> Result<u64, ZipProblem> {
    let mut b = [0u8; 24];
    let n = r.read(&mut b).unwrap_or(0);
    let signed = n >= 4 && u32_at(&b, 0) == DESCRIPTOR_SIG;
    let at = if signed { 4 } else { 0 };
    let header = "data descriptor";
    if n >= at + 12 && u64::from(u32_at(&b, at + 4)) == e.compressed {
        let size = u64::from(u32_at(&b, at + 8));
        compare(e, header, u32_at(&b, at), e.compressed, size)?;
        return Ok(at as u64 + 12);
    }
    if n >= at + 20 {
        compare(
            e,
            header,
            u32_at(&b, at),
            u64_at(&b, at + 4),
            u64_at(&b, at + 12),
        )?;
        return Ok(at as u64 + 20);
    }
    Err(ZipProblem::Damaged {
        name: e.name.clone(),
        why: "its data descriptor is missing".into(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use fake_scrypted::fixture::{RawEntry, plugin_entries, raw_zip};

    use super::*;

    fn with(extra: RawEntry) -> Vec<u8> {
        let mut entries = plugin_entries();
        entries.push(extra);
        raw_zip(&entries)
    }

    fn problem(bytes: Vec<u8>) -> ZipProblem {
        check(Cursor::new(bytes)).expect_err("refused")
    }

    #[test]
    fn an_honest_hand_built_zip_passes() {
        let names = check(Cursor::new(with(RawEntry::new("a/b", b"x")))).expect("ok");
        assert_eq!(names, vec!["main.nodejs.js", "a/b"]);
    }

    #[test]
    fn a_zip_crate_zip_with_deflate_passes() {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("main.nodejs.js", zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(&b"exports.x = 1;\n".repeat(1000))
            .expect("write");
        w.add_directory("fs/", zip::write::SimpleFileOptions::default())
            .expect("dir");
        let bytes = w.finish().expect("finish").into_inner();
        check(Cursor::new(bytes)).expect("ok");
    }

    #[test]
    fn sizes_that_disagree_with_the_data_are_refused() {
        let mut e = RawEntry::new("fs/x.js", b"hello");
        e.local_size = Some(6);
        assert!(matches!(
            problem(with(e)),
            ZipProblem::Mismatch {
                header: "local header",
                ..
            }
        ));
        // Both headers agree with each other, not with the data.
        let mut e = RawEntry::new("fs/x.js", b"hello");
        e.local_size = Some(4);
        e.central_size = Some(4);
        let p = problem(with(e));
        assert!(
            matches!(p, ZipProblem::Mismatch { header: "data", .. }),
            "{p}"
        );
        let mut e = RawEntry::new("fs/x.js", b"hello");
        e.central_size = Some(4);
        assert!(matches!(problem(with(e)), ZipProblem::Mismatch { .. }));
    }

    #[test]
    fn name_conflicts_are_refused() {
        let mut entries = plugin_entries();
        entries.push(RawEntry::new("a", b"file"));
        entries.push(RawEntry::new("a/b", b"file under it"));
        assert_eq!(
            problem(raw_zip(&entries)),
            ZipProblem::FileIsDirectory {
                file: "a".into(),
                other: "a/b".into()
            }
        );
        let mut entries = plugin_entries();
        entries.push(RawEntry::new("main.nodejs.js", b"second copy"));
        assert_eq!(
            problem(raw_zip(&entries)),
            ZipProblem::Duplicate("main.nodejs.js".into())
        );
    }

    #[test]
    fn huge_entries_and_totals_are_refused_unread() {
        let mut e = RawEntry::new("fs/zeros", b"");
        e.central_size = Some(1 << 31);
        assert!(matches!(
            problem(with(e)),
            ZipProblem::EntryTooLarge {
                size: 2_147_483_648,
                ..
            }
        ));
        let mut entries = plugin_entries();
        for name in ["fs/a", "fs/b"] {
            let mut e = RawEntry::new(name, b"");
            e.central_size = Some(600 << 20);
            entries.push(e);
        }
        assert!(matches!(
            problem(raw_zip(&entries)),
            ZipProblem::TotalTooLarge { .. }
        ));
    }

    #[test]
    fn truncated_and_garbage_are_refused() {
        let bytes = with(RawEntry::new("fs/x", b"data"));
        let cut = bytes[..bytes.len() - 10].to_vec();
        assert!(matches!(problem(cut), ZipProblem::Structure(_)));
        assert!(matches!(
            problem(b"not a zip".to_vec()),
            ZipProblem::Structure(_)
        ));
        let mut flipped = bytes.clone();
        flipped[30 + "main.nodejs.js".len()] ^= 0xff;
        assert!(matches!(
            problem(flipped),
            ZipProblem::Mismatch {
                field: "the CRC",
                ..
            }
        ));
    }
}
