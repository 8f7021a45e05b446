use std::path::Path;

pub fn run(dir: &Path) -> Result<(), (u8, String)> {
    let report = nibble_sweep::report(dir).map_err(|e| (1, e.to_string()))?;
    println!("{}", report.markdown);
    for f in &report.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}
