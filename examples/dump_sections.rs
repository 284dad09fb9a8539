//! Prints a corpus's sections and passages (the bundled one unless a folder is named), each
//! passage with its context, for writing eval questions by hand and seeing how a guide splits.
fn main() -> anyhow::Result<()> {
    let folder = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus".to_string());
    let corpus = guidebot::corpus::Corpus::load(std::path::Path::new(&folder))?;
    for guide in &corpus.guides {
        for section in &guide.sections {
            println!(
                "## section_id = {:?}  heading = {:?}",
                section.id, section.heading
            );
            for passage in guide.passages_of(&section.id) {
                let context = passage
                    .context
                    .as_deref()
                    .map(|context| format!(" (after: {})", context.replace('\n', " / ")))
                    .unwrap_or_default();
                println!(
                    "  - [{}]{context} {}",
                    passage.kind.as_str(),
                    passage.text.replace('\n', " / ")
                );
            }
        }
    }
    Ok(())
}
