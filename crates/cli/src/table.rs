//! Terminal tables (comfy-table, which measures cells by their display
//! width, so non-ASCII keys line up) and the few value formats they share:
//! times (humantime), durations and byte sizes (humansize).

use std::time::{Duration, SystemTime};

use comfy_table::{CellAlignment, ContentArrangement, Table};

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// No borders and no lines but a rule of `-` under the header (comfy-table's
/// preset string: a space leaves that part out).
const HEADER_RULE_ONLY: &str = "     -             ";

/// A table with these columns: a header row and a rule, no borders.
pub fn new(columns: &[(&str, Align)]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(HEADER_RULE_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(columns.iter().map(|(name, _)| *name));
    for (column, (_, align)) in table.column_iter_mut().zip(columns) {
        column.set_cell_alignment(match align {
            Align::Left => CellAlignment::Left,
            Align::Right => CellAlignment::Right,
        });
    }
    table
}

/// A two-column key/value table, for one map's figures.
pub fn key_values(pairs: &[(&str, String)]) -> Table {
    let mut table = new(&[("FIELD", Align::Left), ("VALUE", Align::Left)]);
    for (key, value) in pairs {
        table.add_row(vec![(*key).to_owned(), value.clone()]);
    }
    table
}

/// Prints `table` followed by a newline.
pub fn print(table: &Table) {
    println!("{table}");
}

/// `2024-05-01T12:34:56.789Z` (UTC, milliseconds).
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// `850ms`, `12s`, `4m 5s`, `3h 12m`, `2days 3h`: the two largest units.
pub fn duration(d: Duration) -> String {
    let rounded = if d < Duration::from_secs(1) {
        Duration::from_millis(d.as_millis() as u64)
    } else if d < Duration::from_secs(3600) {
        Duration::from_secs(d.as_secs())
    } else if d < Duration::from_secs(86_400) {
        Duration::from_secs(d.as_secs() / 60 * 60)
    } else {
        Duration::from_secs(d.as_secs() / 3600 * 3600)
    };
    humantime::format_duration(rounded).to_string()
}

/// A duration in milliseconds, as [`duration`]; `-` for none.
pub fn millis(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_owned(), |ms| duration(Duration::from_millis(ms)))
}

/// How long ago `time` was, as [`duration`]; `-` for a time in the future.
pub fn age(time: SystemTime) -> String {
    SystemTime::now().duration_since(time).map_or_else(|_| "-".to_owned(), duration)
}

/// `512 B`, `1.50 KiB`, `37.20 MiB`.
pub fn bytes(count: u64) -> String {
    humansize::format_size(count, humansize::BINARY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap_day = SystemTime::UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(leap_day), "2024-02-29T12:34:56.789Z");
    }

    /// Keys in other scripts (the project's tests use them) keep the
    /// columns straight: every line has the same display width.
    #[test]
    fn non_ascii_keys_line_up() {
        let mut table = new(&[("SEQ", Align::Right), ("KEY", Align::Left), ("OP", Align::Left)]);
        for (seq, key) in [(7, "USMF|CUST-1"), (1234, "DE|Kunde-ü-ß"), (9, "JP|顧客-四二"), (10, "emoji|🦀")] {
            table.add_row(vec![seq.to_string(), key.to_owned(), "Update".to_owned()]);
        }
        let text = table.to_string();
        let widths: Vec<usize> = text.lines().map(|line| line.trim_end().width()).collect();
        let op_columns: Vec<usize> = text
            .lines()
            .filter(|line| line.contains("Update"))
            .map(|line| line[..line.find("Update").expect("the cell")].width())
            .collect();
        assert!(op_columns.windows(2).all(|w| w[0] == w[1]), "OP starts at one column:\n{text}\n{op_columns:?}");
        assert!(widths.iter().all(|&w| w > 0), "{text}");
    }

    #[test]
    fn human_sizes_and_durations() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(duration(Duration::from_millis(245_678)), "4m 5s");
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
    }
}
