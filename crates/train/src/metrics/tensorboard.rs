use std::io;
use std::path::Path;

use tensorboard_rs::summary_writer::SummaryWriter;

use super::Sink;
use crate::checkpoint::write_atomic;

/// TensorBoard event files (read by TensorBoard's EventAccumulator), one scalar series per tag.
pub struct TensorboardSink {
    writer: SummaryWriter,
}

impl TensorboardSink {
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            writer: SummaryWriter::new(dir),
        })
    }
}

impl Sink for TensorboardSink {
    fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> std::io::Result<()> {
        for (tag, v) in values {
            self.writer.add_scalar(tag, *v as f32, step as usize);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush();
        Ok(())
    }
}

/// Drops the events logged after `step` from every event file in `tb_dir`, as a resume from the
/// checkpoint at `step` redoes those steps (each writer session opens a new file, so without
/// this the replayed steps would appear twice). Kept records (the file-version record included)
/// keep their exact bytes; each changed file is rewritten atomically. A record that fails its
/// framing or CRC (the tail of a write cut short by SIGKILL) ends the file: it and whatever
/// follows are dropped. A missing directory is nothing to do.
pub fn truncate_events(tb_dir: &Path, step: u64) -> io::Result<()> {
    let entries = match std::fs::read_dir(tb_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let limit = i64::try_from(step).unwrap_or(i64::MAX);
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Dot files are write_atomic's staging files, not TensorBoard's.
        if name.starts_with('.') || !name.contains("tfevents") || !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let bytes = std::fs::read(&path)?;
        let mut kept = Vec::with_capacity(bytes.len());
        let mut rest = bytes.as_slice();
        while let Some(len) = record_len(rest) {
            let (record, tail) = rest.split_at(len);
            if event_step(&record[12..len - 4]).is_some_and(|s| s <= limit) {
                kept.extend_from_slice(record);
            }
            rest = tail;
        }
        if kept.len() != bytes.len() {
            write_atomic(&path, &kept)?;
        }
    }
    Ok(())
}

/// The byte length of the TFRecord at the start of `buf` (u64 LE length, masked CRC-32C of the
/// length, payload, masked CRC-32C of the payload), or None if it is incomplete or corrupt.
fn record_len(buf: &[u8]) -> Option<usize> {
    let len_bytes = buf.get(..8)?;
    let len_crc = u32::from_le_bytes(buf.get(8..12)?.try_into().ok()?);
    if masked_crc32c(len_bytes) != len_crc {
        return None;
    }
    let n = usize::try_from(u64::from_le_bytes(len_bytes.try_into().ok()?)).ok()?;
    let end = n.checked_add(16)?;
    let payload = buf.get(12..12 + n)?;
    let crc = u32::from_le_bytes(buf.get(12 + n..end)?.try_into().ok()?);
    (masked_crc32c(payload) == crc).then_some(end)
}

/// An Event proto's `step` (field 2, varint; 0 when absent), or None if it does not parse.
fn event_step(mut p: &[u8]) -> Option<i64> {
    let mut step = 0;
    while !p.is_empty() {
        let key = varint(&mut p)?;
        match key & 7 {
            0 => {
                let v = varint(&mut p)?;
                if key >> 3 == 2 {
                    step = v as i64; // int64 is two's complement in 10 varint bytes
                }
            }
            1 => p = p.get(8..)?,
            2 => {
                let n = usize::try_from(varint(&mut p)?).ok()?;
                p = p.get(n..)?;
            }
            5 => p = p.get(4..)?,
            _ => return None,
        }
    }
    Some(step)
}

fn varint(p: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = p.split_first()?;
        *p = rest;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// CRC-32C (Castagnoli) lookup table.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// TFRecord's masked CRC-32C: rotated right by 15 bits plus a constant.
fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = !data.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    });
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}
