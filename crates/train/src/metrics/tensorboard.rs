use std::path::Path;

use tensorboard_rs::summary_writer::SummaryWriter;

use super::Sink;

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
