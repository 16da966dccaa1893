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
//! gets that older version, whole. (A reader that takes the footer from its
//! later open and the size from the earlier one finds the footer naming bytes
//! past that size, and refuses the read: docs/RESULTS.md.) Rows added to an unchanged schema append one
//! row group and reuse the earlier ones; a new column, a changed type or
//! replaced rows append a whole new copy of the table (the old bytes stay,
//! unreferenced).
//!
//! The unreferenced bytes grow faster than the table: every version leaves its
//! footer behind, and each footer names every row group so far, so n appends
//! leave about n²/2 row groups' worth of footers (a summary of 120 short runs
//! took 380 kB for 30 kB of rows; one of 2,000 runs would take about 100 MB). So a version that would be more than BLOAT times the
//! bytes it references, plus SLACK, is written afresh instead: the table alone,
//! one row group, renamed over the file. That is the one moment a reader that
//! opens the path twice can fail: it read the footer of the version before,
//! whose offsets the fresh file does not keep. It gets an error (the bytes at
//! those offsets are not the pages it expects), and a retry reads the fresh
//! file. A reader that opens the file once never sees it.

use super::atomic;
use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::*;
use polars_parquet_format::thrift::protocol::{TCompactInputProtocol, TCompactOutputProtocol};
use polars_parquet_format::FileMetaData;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8] = b"PAR1";
/// A file holds at most BLOAT times the bytes its newest version references,
/// plus SLACK, before it is written afresh: small folders never are, and a
/// large one stays within a small multiple of its tables' size.
const BLOAT: u64 = 2;
const SLACK: u64 = 1 << 20;

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

/// The bytes a footer's row groups reference: their column chunks and indexes.
fn referenced(meta: &FileMetaData) -> u64 {
    let chunk = |c: &polars_parquet_format::ColumnChunk| {
        c.meta_data.as_ref().map_or(0, |m| m.total_compressed_size)
            + i64::from(c.offset_index_length.unwrap_or(0))
            + i64::from(c.column_index_length.unwrap_or(0))
    };
    let groups = meta.row_groups.iter().flat_map(|g| &g.columns);
    groups.map(chunk).sum::<i64>().max(0) as u64
}

/// Writes `df` to `path`. The file's first `kept` rows must be `df`'s first
/// `kept` rows, unchanged (the caller knows which rows it replaced).
pub fn write(path: &Path, df: &mut DataFrame, kept: usize) -> Result<()> {
    write_within(path, df, kept, SLACK)
}

fn write_within(path: &Path, df: &mut DataFrame, kept: usize, slack: u64) -> Result<()> {
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
    // Row group ordinals are i16: past that many groups, start afresh.
    if meta.row_groups.len() > i16::MAX as usize {
        return atomic::write_bytes(path, &encode(df)?.bytes);
    }
    for (i, group) in meta.row_groups.iter_mut().enumerate() {
        if group.ordinal.is_some() {
            group.ordinal = Some(i as i16);
        }
    }
    let mut footer = Vec::new();
    meta.write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut footer))
        .map_err(|e| anyhow!("encoding the Parquet footer of {what}: {e}"))?;
    let tail = (MAGIC.len() + footer.len() + 8) as u64;
    let size = old.bytes.len() as u64 + (new.footer - MAGIC.len()) as u64 + footer.len() as u64 + 8;
    if size > BLOAT * (referenced(&meta) + tail) + slack {
        return atomic::write_bytes(path, &encode(df)?.bytes);
    }
    atomic::write_with(path, |file| {
        file.write_all(&old.bytes)?;
        file.write_all(&new.bytes[MAGIC.len()..new.footer])?;
        file.write_all(&footer)?;
        file.write_all(&(footer.len() as u32).to_le_bytes())?;
        file.write_all(MAGIC)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: std::ops::Range<i64>, extra: bool) -> DataFrame {
        let run: Vec<i64> = rows.clone().collect();
        let run_count = run.len();
        let loss: Vec<f64> = rows.clone().map(|i| 1.0 / (i + 1) as f64).collect();
        let mut columns = vec![
            Column::new("run".into(), run),
            Column::new("loss".into(), loss),
        ];
        if extra {
            let tag: Vec<String> = rows.map(|i| format!("t{i}")).collect();
            columns.push(Column::new("tag".into(), tag));
        }
        DataFrame::new(run_count, columns).unwrap()
    }

    fn read(path: &Path) -> DataFrame {
        ParquetReader::new(std::fs::File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    /// Writes `df` and checks the new file begins with every byte of the old
    /// one and reads back as `df`.
    fn grows_to(path: &Path, mut df: DataFrame, kept: usize, slack: u64) -> Vec<u8> {
        let before = std::fs::read(path).unwrap_or_default();
        write_within(path, &mut df, kept, slack).unwrap();
        let after = std::fs::read(path).unwrap();
        assert!(read(path).equals_missing(&df), "reads back as written");
        assert!(after.starts_with(&before), "keeps every earlier byte");
        after
    }

    #[test]
    fn each_version_keeps_the_one_before_and_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        grows_to(&path, table(0..3, false), 0, SLACK);
        // New rows: one more row group, the old ones reused.
        let two = grows_to(&path, table(0..5, false), 3, SLACK);
        assert_eq!(parse(two, "t").unwrap().meta.row_groups.len(), 2);
        // A new column, then replaced rows: a whole new copy after the old bytes.
        grows_to(&path, table(0..6, true), 5, SLACK);
        let mut replaced = table(0..6, true);
        replaced
            .with_column(Column::new("loss".into(), vec![9.0; 6]))
            .unwrap();
        let same = grows_to(&path, replaced.clone(), 1, SLACK);
        // Nothing new: the file is left as it is.
        assert_eq!(grows_to(&path, replaced, 6, SLACK), same);
    }

    #[test]
    fn a_file_far_larger_than_its_table_is_written_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut fresh = 0;
        for n in 1..=60 {
            let before = std::fs::read(&path).unwrap_or_default();
            let mut df = table(0..n, true);
            write_within(&path, &mut df, n as usize - 1, 0).unwrap();
            assert!(read(&path).equals_missing(&df));
            let after = std::fs::read(&path).unwrap();
            if !after.starts_with(&before) {
                fresh += 1;
                assert_eq!(parse(after.clone(), "t").unwrap().meta.row_groups.len(), 1);
            }
            let meta = parse(after.clone(), "t").unwrap().meta;
            let footer =
                u32::from_le_bytes(after[after.len() - 8..after.len() - 4].try_into().unwrap());
            let live = referenced(&meta) + 12 + u64::from(footer);
            assert!(
                after.len() as u64 <= BLOAT * live,
                "{} bytes for {live}",
                after.len()
            );
        }
        assert!(fresh >= 3, "written afresh {fresh} times in 60 appends");
    }
}
