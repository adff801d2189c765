//! Timestamps as the database stores them: RFC 3339 text in UTC with whole seconds and a
//! `Z` suffix, always 20 characters, so text order equals time order on both backends.

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// Formats a moment as stored text, truncated to the second.
pub fn format(moment: OffsetDateTime) -> String {
    moment.to_offset(time::UtcOffset::UTC).format(FORMAT).expect("a UTC date of years 0..=9999 formats")
}

/// Parses stored text back into a moment.
pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    time::PrimitiveDateTime::parse(text, FORMAT).map(|moment| moment.assume_utc())
}

/// Returns the current moment as stored text.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    #[test]
    fn format_has_fixed_width() {
        assert_eq!(super::format(datetime!(2026-01-02 03:04:05.678 UTC)), "2026-01-02T03:04:05Z");
        assert_eq!(super::format(datetime!(2026-01-02 05:04:05 +02:00)), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn parse_reverses_format() {
        let moment = datetime!(2026-12-31 23:59:59 UTC);
        assert_eq!(super::parse(&super::format(moment)).unwrap(), moment);
    }
}
