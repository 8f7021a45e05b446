use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::Sink;

/// One JSON object per line: `{"step": 10, "loss": 2.31, ...}`. Appends, so a resumed run
/// continues the same file.
pub struct JsonlSink {
    out: BufWriter<File>,
}

impl JsonlSink {
    pub fn new(path: &Path) -> std::io::Result<Self> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        Ok(Self {
            out: BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?),
        })
    }
}

impl Sink for JsonlSink {
    fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> std::io::Result<()> {
        let mut m = serde_json::Map::new();
        m.insert("step".into(), step.into());
        for (k, v) in values {
            // JSON has no NaN/Inf: write them as null rather than an invalid file.
            let val = serde_json::Number::from_f64(*v)
                .map_or(serde_json::Value::Null, serde_json::Value::Number);
            m.insert((*k).to_string(), val);
        }
        writeln!(self.out, "{}", serde_json::Value::Object(m))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}
