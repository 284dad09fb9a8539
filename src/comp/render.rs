//! Comp rows as aligned monospace text, for the terminal and for a Discord code block (Discord does not render Markdown tables).

use super::{CompRecord, Origin};

const HEADERS: [&str; 6] = ["Company", "Role", "Level", "Base", "Total comp", "Notes"];

/// The rows as an aligned table followed by a one-line source footer: what `guidebot comp` prints.
pub fn render_aligned_table(rows: &[CompRecord]) -> String {
    if rows.is_empty() {
        return "No compensation rows.".to_string();
    }
    format!("{}\n{}", render_rows(rows), source_footer(rows))
}

/// Just the aligned columns (header, rule, one line per row), without the footer: the part the bot
/// puts inside a code block. Columns are padded by display width (an en dash is one column, CJK
/// and emoji two); trailing spaces are trimmed; backticks become quotes so the block cannot break.
pub fn render_rows(rows: &[CompRecord]) -> String {
    let mut table: Vec<[String; 6]> = Vec::with_capacity(rows.len() + 1);
    table.push(HEADERS.map(str::to_string));
    for row in rows {
        table.push(cells(row));
    }
    let mut widths = [0usize; 6];
    for line in &table {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(display_width(cell));
        }
    }
    let mut lines = Vec::with_capacity(table.len() + 1);
    for (index, line) in table.iter().enumerate() {
        lines.push(join_padded(line, &widths));
        if index == 0 {
            let rule = widths.map(|width| "-".repeat(width));
            lines.push(join_padded(&rule, &widths));
        }
    }
    lines.join("\n")
}

/// "Source: levels.fyi 2026, per <guide title> §<heading>": where the rows come from, on one line.
/// Rows sharing a source and guide are grouped; their sections are listed in order.
pub fn source_footer(rows: &[CompRecord]) -> String {
    let mut groups: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for row in rows {
        match groups
            .iter_mut()
            .find(|(source, title, _)| *source == row.source && *title == row.guide_title)
        {
            Some((_, _, headings)) => {
                if !headings.contains(&row.heading.as_str()) {
                    headings.push(&row.heading);
                }
            }
            None => groups.push((&row.source, &row.guide_title, vec![&row.heading])),
        }
    }
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(source, title, headings)| {
            let sections: Vec<String> = headings.iter().map(|h| format!("§{h}")).collect();
            format!("{source}, per {title} {}", sections.join(", "))
        })
        .collect();
    clean(&format!("Source: {}", parts.join("; ")))
}

fn cells(row: &CompRecord) -> [String; 6] {
    let dash = || "-".to_string();
    let level = if !row.level_text.is_empty() {
        row.level_text.clone()
    } else {
        row.level.clone().unwrap_or_else(dash)
    };
    let mut notes = row.notes.clone();
    if row.origin == Origin::Prose {
        notes.push(format!("from the text, §{}", row.heading));
    }
    [
        row.company.clone(),
        row.role.clone().unwrap_or_else(dash),
        level,
        row.base
            .as_ref()
            .map(|m| m.text.clone())
            .unwrap_or_else(dash),
        row.total
            .as_ref()
            .map(|m| m.text.clone())
            .unwrap_or_else(dash),
        notes.join("; "),
    ]
    .map(|cell| clean(&cell))
}

fn clean(text: &str) -> String {
    text.replace('`', "'")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn join_padded(cells: &[String; 6], widths: &[usize; 6]) -> String {
    let mut line = String::new();
    for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if index > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        line.push_str(&" ".repeat(width.saturating_sub(display_width(cell))));
    }
    line.trim_end().to_string()
}

/// Columns a string takes in a monospace font: combining marks 0, East Asian wide and emoji 2,
/// everything else (the en dash included) 1.
pub fn display_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

fn char_width(character: char) -> usize {
    let code = character as u32;
    match code {
        0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F | 0x20D0..=0x20FF => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_count_columns_not_bytes() {
        assert_eq!(display_width("$170k–$220k"), 11);
        assert_eq!(display_width("日本"), 4);
        assert_eq!(display_width("e\u{301}"), 1);
    }
}
