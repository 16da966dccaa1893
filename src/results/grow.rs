//! Parquet files that only grow, so a live run folder can be read by path at any
//! moment.
//!
//! A Parquet file is row groups followed by a footer that names each column
//! chunk by its byte offset. Each new version of a table file begins with every
//! byte of the version before it, then new column chunks, then a new footer;
//! it replaces the file by an atomic rename. A reader that opens the file once
//! reads one whole version. A reader that opens it twice (polars reads the
//! footer, then opens the path again for the data) reads the data an older
//! footer names, which every later version holds at the same offsets: it still
//! gets that older version, whole. Rows added to an unchanged schema append one
//! row group and reuse the earlier ones; a new column, a changed type or
//! replaced rows append a whole new copy of the table (the old bytes stay,
//! unreferenced).

use super::atomic;
use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;
use polars_parquet_format::thrift::protocol::{TCompactInputProtocol, TCompactOutputProtocol};
use polars_parquet_format::FileMetaData;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8] = b"PAR1";

/// A whole Parquet file split at its footer.
struct Parsed {
    bytes: Vec<u8>,
    /// Where the footer starts: data (and page indexes) are `bytes[..footer]`.
    footer: usize,
    meta: FileMetaData,
}

fn parse(bytes: Vec<u8>, what: &str) -> Result<Parsed> {
    let n = bytes.len();
    if n < 12 || &bytes[..4] != MAGIC || &bytes[n - 4..] != MAGIC {
        bail!("{what} is not a Parquet file");
    }
    let len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().expect("4 bytes")) as usize;
    let footer = (n - 8)
        .checked_sub(len)
        .filter(|&f| f >= 4)
        .ok_or_else(|| anyhow!("{what}: footer length {len} exceeds the file"))?;
    // The limit bounds what the decoder allocates, counted as 8 bytes per list
    // element (each encoded in at least one byte) and 1 per string byte, so
    // 16 times the footer's length can never refuse a well-formed footer.
    let limit = len.saturating_mul(16).saturating_add(1024);
    let mut protocol = TCompactInputProtocol::new(&bytes[footer..n - 8], limit);
    let meta = FileMetaData::read_from_in_protocol(&mut protocol)
        .map_err(|e| anyhow!("{what}: cannot read the Parquet footer: {e}"))?;
    Ok(Parsed {
        bytes,
        footer,
        meta,
    })
}

fn encode(df: &mut DataFrame) -> Result<Parsed> {
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(df)
        .map_err(|e| anyhow!("encoding Parquet: {e}"))?;
    parse(bytes, "encoded table")
}

/// Moves every byte offset in `meta`'s row groups by `by`.
fn shift(meta: &mut FileMetaData, by: i64) {
    let add = |o: &mut Option<i64>| {
        if let Some(o) = o {
            *o += by;
        }
    };
    for group in &mut meta.row_groups {
        add(&mut group.file_offset);
        for chunk in &mut group.columns {
            chunk.file_offset += by;
            add(&mut chunk.offset_index_offset);
            add(&mut chunk.column_index_offset);
            if let Some(m) = &mut chunk.meta_data {
                m.data_page_offset += by;
                add(&mut m.index_page_offset);
                add(&mut m.dictionary_page_offset);
                add(&mut m.bloom_filter_offset);
            }
        }
    }
}

/// Writes `df` to `path`. The file's first `kept` rows must be `df`'s first
/// `kept` rows, unchanged (the caller knows which rows it replaced).
pub fn write(path: &Path, df: &mut DataFrame, kept: usize) -> Result<()> {
    let what = path.display().to_string();
    let old = match std::fs::read(path) {
        Ok(bytes) => Some(parse(bytes, &what)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {what}")),
    };
    let Some(old) = old else {
        let new = encode(df)?;
        return atomic::write_bytes(path, &new.bytes);
    };
    let old_rows = old.meta.num_rows as usize;
    let height = df.height();
    // Only new rows, on the same schema: one more row group.
    let tail = if kept == old_rows && height >= kept {
        if height == kept {
            return Ok(()); // nothing new
        }
        let tail = encode(&mut df.slice(kept as i64, height - kept))?;
        let same = tail.meta.schema == old.meta.schema
            && tail.meta.key_value_metadata == old.meta.key_value_metadata;
        same.then_some(tail)
    } else {
        None
    };
    let (mut new, append) = match tail {
        Some(tail) => (tail, true),
        None => (encode(df)?, false),
    };
    let at = old.bytes.len() as i64;
    shift(&mut new.meta, at - MAGIC.len() as i64);
    let mut meta = new.meta;
    if append {
        let mut groups = old.meta.row_groups.clone();
        groups.append(&mut meta.row_groups);
        meta.row_groups = groups;
        meta.num_rows += old.meta.num_rows;
    }
    for (i, group) in meta.row_groups.iter_mut().enumerate() {
        if group.ordinal.is_some() {
            group.ordinal = Some(i as i16);
        }
    }
    let mut footer = Vec::new();
    meta.write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut footer))
        .map_err(|e| anyhow!("encoding the Parquet footer of {what}: {e}"))?;
    atomic::write_with(path, |file| {
        file.write_all(&old.bytes)?;
        file.write_all(&new.bytes[MAGIC.len()..new.footer])?;
        file.write_all(&footer)?;
        file.write_all(&(footer.len() as u32).to_le_bytes())?;
        file.write_all(MAGIC)?;
        Ok(())
    })
}
