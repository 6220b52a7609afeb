//! The SQL implementations of [`Store`](super::Store): SQLite and PostgreSQL.
//!
//! The methods are written once, in `sql/shared/` (one file per entity), and compiled twice: `sql/sqlite.rs`
//! and `sql/postgres.rs` each include that folder as a child module, after defining `Db` (the sqlx database),
//! `ThisStore` (the store type) and the few things the backends do differently (how a write transaction starts,
//! row locks). The SQL is the common dialect of both: `$1, $2…` placeholders numbered in order of first
//! appearance (SQLite binds `$N` by first appearance), `RETURNING`, `ON CONFLICT … DO UPDATE`, integers for
//! timestamps (milliseconds), JSON as text. The schemas are `migrations/sqlite` and `migrations/postgres`.
//!
//! This file holds the helpers that do not depend on the backend.

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use super::{Page, PageRequest, StoreError, StoreResult};
use crate::domain::access::Visible;
use crate::domain::model::TimestampMs;
use crate::domain::names::Scope;

/// Page size when the caller asks for 0.
const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most items one page holds.
const MAX_PAGE_SIZE: u32 = 1000;

/// The UTC date of a timestamp, as ISO text (YYYY-MM-DD): the form the stored `valid_from`/`valid_to` take.
pub(crate) fn iso_date(at: TimestampMs) -> String {
    // Howard Hinnant's civil_from_days.
    let days = at.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The number of items a page holds (the SQL fetches one more to learn whether another page follows).
fn page_limit(page: &PageRequest) -> i64 {
    let size = if page.size == 0 { DEFAULT_PAGE_SIZE } else { page.size.min(MAX_PAGE_SIZE) };
    i64::from(size)
}

/// The text key to continue after, for listings in ascending text order ("" sorts before every code).
fn after_text(page: &PageRequest) -> String {
    page.after.clone().unwrap_or_default()
}

/// The id to continue after, for listings in ascending id order.
fn after_id_ascending(page: &PageRequest) -> StoreResult<i64> {
    page.after.as_deref().map_or(Ok(0), parse_id_key)
}

/// The id to continue after, for listings newest (highest id) first.
fn after_id_descending(page: &PageRequest) -> StoreResult<i64> {
    page.after.as_deref().map_or(Ok(i64::MAX), parse_id_key)
}

fn parse_id_key(key: &str) -> StoreResult<i64> {
    key.parse().map_err(|_| StoreError::NotFound(format!("page position {key:?} (not a position this listing issued)")))
}

/// Cuts the fetched rows (up to `limit + 1`, each with its sort key) to a page.
fn keyed_page<T>(mut rows: Vec<(String, T)>, limit: i64) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(|(key, _)| key.clone()) } else { None };
    Page { items: rows.into_iter().map(|(_, item)| item).collect(), next }
}

fn page_by<T>(items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    keyed_page(items.into_iter().map(|item| (key(&item), item)).collect(), limit)
}

/// The townships column a scope filters on, and the value: every township in scope has it.
fn scope_filter(scope: &Scope) -> (&'static str, &str) {
    match scope {
        Scope::City(city) => ("city", city.as_str()),
        Scope::County(county) => ("county", county.as_str()),
        Scope::Township(township) => ("code", township.as_str()),
    }
}

/// ` AND (…)` keeping the rows whose division code `column` lies within one of `visible`'s codes or contains
/// one (a county editor's city is listed), with the codes to bind as `$first`, `$first + 1`, …: a list above
/// the caller's jurisdiction is filtered in SQL. The codes are digits only, so no LIKE escaping is needed.
fn visible_codes(column: &str, visible: &Visible, first: usize) -> (String, Vec<String>) {
    match visible {
        Visible::All => (String::new(), Vec::new()),
        Visible::Under(codes) => {
            let terms: Vec<String> = (first..first + codes.len())
                .map(|n| format!("{column} LIKE ${n} || '%' OR ${n} LIKE {column} || '%'"))
                .collect();
            (format!(" AND ({})", terms.join(" OR ")), codes.clone())
        }
    }
}

/// The same for audit events, whose resource names spell the codes (`cities/4301/counties/430181/…`).
fn visible_resources(column: &str, visible: &Visible, first: usize) -> (String, Vec<String>) {
    match visible {
        Visible::All => (String::new(), Vec::new()),
        Visible::Under(codes) => {
            let prefixes: Vec<String> = codes.iter().map(|code| resource_prefix_of(code)).collect();
            let terms: Vec<String> =
                (first..first + prefixes.len()).map(|n| format!("{column} LIKE ${n} || '%'")).collect();
            (format!(" AND ({})", terms.join(" OR ")), prefixes)
        }
    }
}

/// The resource-name prefix of a division code of any length: `43` → `cities/43`, `430181` →
/// `cities/4301/counties/430181`.
fn resource_prefix_of(code: &str) -> String {
    match code.len() {
        0..=4 => format!("cities/{code}"),
        5..=6 => format!("cities/{}/counties/{code}", &code[..4]),
        _ => format!("cities/{}/counties/{}/townships/{code}", &code[..4], &code[..6]),
    }
}

/// A LIKE pattern matching every text that starts with `prefix`, with `\` as the escape character.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The JSON form of a record, for audit events.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|error| serde_json::json!({ "unserialisable": error.to_string() }).to_string())
}

/// A stored value that does not decode: the database was changed behind the registry's back.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("stored data is corrupt: {what}"))
}

/// "a, b, c", or "none".
fn list_or_none(names: &[String]) -> String {
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(951_782_400_000), "2000-02-29");
        assert_eq!(iso_date(1_735_689_599_999), "2024-12-31");
        assert_eq!(iso_date(-1), "1969-12-31");
    }

    #[test]
    fn pages() {
        assert_eq!(page_limit(&PageRequest { size: 0, after: None }), 100);
        assert_eq!(page_limit(&PageRequest { size: 5000, after: None }), 1000);
        let page = page_by(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(page, Page { items: vec![1, 2], next: Some("2".to_owned()) });
        let page = page_by(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(page, Page { items: vec![1, 2], next: None });
        assert!(after_id_descending(&PageRequest { size: 1, after: Some("x".into()) }).is_err());
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_prefix("cities/4301"), "cities/4301%");
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }
}
