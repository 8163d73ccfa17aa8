//! The bundle's container: a ZIP archive of stored (uncompressed) entries that orgsec writes
//! the same way, byte for byte, from the same files. Any ZIP tool opens it; `verify` rebuilds it
//! from the entries it read and compares, so that one flipped byte anywhere in the archive, in a
//! file or in the archive's own headers, is found and placed.
//!
//! Fixed choices, so that the bytes depend on the files alone: entries in the order given,
//! UTF-8 names, no extra fields or comments but the archive's own, the DOS time of 1980-01-01 00:00 on every entry
//! (the manifest carries the real time), no data descriptors, no ZIP64 (an entry and the archive
//! stay under 4 GiB).

use std::ops::Range;

const LOCAL: u32 = 0x0403_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END: u32 = 0x0605_4b50;
const VERSION: u16 = 20;
/// Names are UTF-8.
const FLAGS: u16 = 0x0800;
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;
#[cfg(test)]
const LOCAL_LEN: usize = 30;
#[cfg(test)]
const END_LEN: usize = 22;

/// An entry as read, with where its bytes lie in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub data: Vec<u8>,
    /// The local header, name and data.
    pub span: Range<usize>,
}

/// Why an archive cannot be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} (at byte {at})")]
pub struct ZipError {
    pub what: String,
    pub at: usize,
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32_of(n: usize, what: &str) -> Result<u32, ZipError> {
    u32::try_from(n).map_err(|_| ZipError { what: format!("{what} is over 4 GiB, more than a bundle holds"), at: 0 })
}

/// The archive of `files` (name, content), in order, with the archive comment `comment`.
pub fn write(files: &[(&str, &[u8])], comment: &[u8]) -> Result<Vec<u8>, ZipError> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let offset = u32_of(out.len(), "the archive")?;
        let crc = crc32fast::hash(data);
        let size = u32_of(data.len(), name)?;
        let name_len = u16::try_from(name.len())
            .map_err(|_| ZipError { what: format!("the name {name:?} is too long"), at: out.len() })?;
        put32(&mut out, LOCAL);
        for v in [VERSION, FLAGS, 0, DOS_TIME, DOS_DATE] {
            put16(&mut out, v);
        }
        for v in [crc, size, size] {
            put32(&mut out, v);
        }
        put16(&mut out, name_len);
        put16(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        put32(&mut central, CENTRAL);
        for v in [VERSION, VERSION, FLAGS, 0, DOS_TIME, DOS_DATE] {
            put16(&mut central, v);
        }
        for v in [crc, size, size] {
            put32(&mut central, v);
        }
        for v in [name_len, 0, 0, 0, 0] {
            put16(&mut central, v);
        }
        put32(&mut central, 0);
        put32(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let count = u16::try_from(files.len()).map_err(|_| ZipError { what: "too many files".into(), at: 0 })?;
    let central_at = u32_of(out.len(), "the archive")?;
    let central_len = u32_of(central.len(), "the archive's directory")?;
    out.extend_from_slice(&central);
    put32(&mut out, END);
    for v in [0, 0, count, count] {
        put16(&mut out, v);
    }
    put32(&mut out, central_len);
    put32(&mut out, central_at);
    let comment_len =
        u16::try_from(comment.len()).map_err(|_| ZipError { what: "the comment is too long".into(), at: 0 })?;
    put16(&mut out, comment_len);
    out.extend_from_slice(comment);
    Ok(out)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn fail(&self, what: impl Into<String>) -> ZipError {
        ZipError { what: what.into(), at: self.at }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ZipError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| self.fail("the archive ends early"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, ZipError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ZipError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The entries of an archive [`write`] made, in order. Reads the local entries one after the
/// other (their headers give each size); what cannot be read is an error that says where.
/// Whether the rest of the archive (its directory) is as written is for [`write`] to tell: the
/// caller rebuilds the archive from the entries and compares.
pub fn read(bytes: &[u8]) -> Result<Vec<Entry>, ZipError> {
    let mut c = Cursor { bytes, at: 0 };
    let mut entries = Vec::new();
    loop {
        let start = c.at;
        let sig = c.u32()?;
        if sig == CENTRAL {
            break;
        }
        if sig != LOCAL {
            return Err(ZipError { what: "not the start of a file entry".into(), at: start });
        }
        let _version = c.u16()?;
        let flags = c.u16()?;
        let method = c.u16()?;
        if method != 0 || flags & 0x0008 != 0 {
            return Err(ZipError { what: "a compressed entry: orgsec writes stored entries only".into(), at: start });
        }
        let _time = c.u16()?;
        let _date = c.u16()?;
        // The checksum and everything else a reader could ignore are checked by rebuilding.
        let _crc = c.u32()?;
        let size = c.u32()? as usize;
        let _usize = c.u32()?;
        let name_len = c.u16()? as usize;
        let extra_len = c.u16()? as usize;
        let name = c.take(name_len)?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| ZipError { what: "a name that is not UTF-8".into(), at: start })?;
        c.take(extra_len)?;
        let data = c.take(size)?.to_vec();
        entries.push(Entry { name, data, span: start..c.at });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_rebuilds_to_the_same_bytes() {
        let files: [(&str, &[u8]); 3] = [("a.txt", b"hello"), ("dir/b.json", b"{}"), ("empty", b"")];
        let bytes = write(&files, b"note").unwrap();
        let entries = read(&bytes).unwrap();
        let again: Vec<(&str, &[u8])> = entries.iter().map(|e| (e.name.as_str(), e.data.as_slice())).collect();
        assert_eq!(again, files);
        assert_eq!(write(&again, b"note").unwrap(), bytes);
        assert!(bytes.ends_with(b"note"));
        assert_eq!(entries[0].span.start, 0);
        assert_eq!(entries[1].span.start, entries[0].span.end);
        // The layout of the first local header: signature, sizes, then the name.
        assert_eq!(&bytes[..4], &LOCAL.to_le_bytes());
        assert_eq!(&bytes[LOCAL_LEN..LOCAL_LEN + 5], b"a.txt");
        assert_eq!(&bytes[bytes.len() - END_LEN - 4..][..4], &END.to_le_bytes());
    }

    #[test]
    fn damage_is_reported_with_where() {
        let bytes = write(&[("a.txt", b"hello")], b"").unwrap();
        let mut bad = bytes.clone();
        bad[LOCAL_LEN + 5] ^= 1; // the first byte of the content: read, but no longer rebuilds the same
        let entries = read(&bad).unwrap();
        let files: Vec<(&str, &[u8])> = entries.iter().map(|e| (e.name.as_str(), e.data.as_slice())).collect();
        assert_ne!(write(&files, b"").unwrap(), bad, "the checksum no longer matches");
        assert!(read(&bytes[..10]).unwrap_err().what.contains("ends early"));
        let mut bad = bytes;
        bad[0] ^= 1;
        assert_eq!(read(&bad).unwrap_err().at, 0);
    }
}
