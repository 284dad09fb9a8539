//! Prints the bundled corpus's sections and passages, for writing eval questions by hand.
fn main() -> anyhow::Result<()> {
    let corpus = guidebot::corpus::Corpus::load(std::path::Path::new("corpus"))?;
    for guide in &corpus.guides {
        for section in &guide.sections {
            println!(
                "## section_id = {:?}  heading = {:?}",
                section.id, section.heading
            );
            for passage in guide.passages_of(&section.id) {
                println!(
                    "  - [{}] {}",
                    passage.kind.as_str(),
                    passage.text.replace('\n', " / ")
                );
            }
        }
    }
    Ok(())
}
