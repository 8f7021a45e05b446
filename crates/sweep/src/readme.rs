//! Puts the generated report into the study's README between markers, leaving the hand-written
//! rest (setup, conclusions) alone.

use std::path::Path;

use nibble_train::checkpoint::write_atomic;

use crate::error::SweepError;

pub const BEGIN: &str = "<!-- nibble-report:begin -->";
pub const END: &str = "<!-- nibble-report:end -->";

/// `text` with the marked section replaced by `section` (appended when there are no markers).
pub fn splice(text: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &text[..b], &text[e + END.len()..])
        }
        _ if text.trim().is_empty() => format!("{block}\n"),
        _ => format!("{}\n\n{block}\n", text.trim_end()),
    }
}

/// Writes `section` into `readme` (created with `title` if missing).
pub fn update(readme: &Path, title: &str, section: &str) -> Result<(), SweepError> {
    let text = match std::fs::read_to_string(readme) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("# {title}\n"),
        Err(e) => return Err(SweepError::io(readme)(e)),
    };
    write_atomic(readme, splice(&text, section).as_bytes()).map_err(SweepError::io(readme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_marked_section() {
        let t = format!("# T\nintro\n{BEGIN}\nold\n{END}\nconclusions\n");
        let out = splice(&t, "new table");
        assert_eq!(
            out,
            format!("# T\nintro\n{BEGIN}\nnew table\n{END}\nconclusions\n")
        );
        assert_eq!(splice(&out, "new table"), out, "idempotent");
        let appended = splice("# T\nintro\n", "x");
        assert!(appended.starts_with("# T\nintro\n\n") && appended.contains("x\n<!--"));
    }
}
