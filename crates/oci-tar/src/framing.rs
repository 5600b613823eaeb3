//! Writing tar entries to a stream that cannot seek, deterministically.
//!
//! `tar::Builder` takes an entry's content as a `Read` (or needs `Seek` for `append_writer`);
//! a blob streamed into a pipe has neither, so entries are framed here: `tar::Header` encodes
//! each header, and this module adds the GNU long-name record, the padding and the end marker.

use std::io::{self, Write};

use tar::{EntryType, Header};

const BLOCK: u64 = 512;
/// Longest name that fits the header's own name field.
const NAME_FIELD: usize = 100;

/// Metadata of every entry: what the archive says must not depend on who wrote it or when.
fn header(entry_type: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Writes the header(s) of an entry named `name` (UTF-8, no leading `/`) of `size` bytes.
/// Names over 100 bytes (`blobs/sha512/<128 hex>`) get a GNU long-name record first.
pub fn write_header(
    out: &mut dyn Write,
    name: &str,
    entry_type: EntryType,
    mode: u32,
    size: u64,
) -> io::Result<()> {
    let mut main = header(entry_type, mode, size);
    let name_bytes = name.as_bytes();
    if name_bytes.len() > NAME_FIELD {
        let mut data = name_bytes.to_vec();
        data.push(0);
        let mut long = header(EntryType::GNULongName, 0o644, data.len() as u64);
        long.as_gnu_mut().expect("a GNU header").name[..13].copy_from_slice(b"././@LongLink");
        long.set_cksum();
        out.write_all(long.as_bytes())?;
        out.write_all(&data)?;
        write_padding(out, data.len() as u64)?;
        main.as_gnu_mut()
            .expect("a GNU header")
            .name
            .copy_from_slice(&name_bytes[..NAME_FIELD]);
    } else {
        main.as_gnu_mut().expect("a GNU header").name[..name_bytes.len()]
            .copy_from_slice(name_bytes);
    }
    main.set_cksum();
    out.write_all(main.as_bytes())
}

/// Zeros that round an entry of `size` bytes up to a whole block.
pub fn write_padding(out: &mut dyn Write, size: u64) -> io::Result<()> {
    let rest = (BLOCK - size % BLOCK) % BLOCK;
    out.write_all(&[0u8; BLOCK as usize][..rest as usize])
}

/// A whole small entry.
pub fn write_file(out: &mut dyn Write, name: &str, mode: u32, data: &[u8]) -> io::Result<()> {
    write_header(out, name, EntryType::Regular, mode, data.len() as u64)?;
    out.write_all(data)?;
    write_padding(out, data.len() as u64)
}

/// A directory entry (`name` ends with `/`).
pub fn write_dir(out: &mut dyn Write, name: &str) -> io::Result<()> {
    write_header(out, name, EntryType::Directory, 0o755, 0)
}

/// The end-of-archive marker: two zero blocks.
pub fn write_end(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&[0u8; 2 * BLOCK as usize])
}
