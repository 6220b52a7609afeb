//! Keeps `POLICY.md` true: the table from the policy document's sentences to rule ids and tests must name only
//! rule ids the registry has and tests that exist, and every rule id must have a row with a test named after it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use township_registry::domain::rules::RULE_IDS;

struct Row {
    number: String,
    rule_ids: Vec<String>,
    tests: Vec<String>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the registry crate sits in the workspace").to_owned()
}

/// The words in backticks of a table cell.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn trace_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(workspace_root().join("POLICY.md")).expect("POLICY.md at the top level");
    text.lines()
        .filter(|line| line.starts_with("| ") && line[2..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 6, "a POLICY.md row has 6 cells: {line}");
            Row { number: cells[0].to_owned(), rule_ids: quoted(cells[2]), tests: quoted(cells[5]) }
        })
        .collect()
}

/// Every function and Python test name defined in the workspace's sources, outside build output.
fn defined_functions() -> BTreeSet<String> {
    fn walk(dir: &Path, names: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("a readable source tree").flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if !matches!(name.to_str(), Some("target" | ".git" | "node_modules" | ".venv")) {
                    walk(&path, names);
                }
                continue;
            }
            let keyword = match path.extension().and_then(|e| e.to_str()) {
                Some("rs") => "fn ",
                Some("py") => "def ",
                _ => continue,
            };
            let source = std::fs::read_to_string(&path).unwrap_or_default();
            for piece in source.split(keyword).skip(1) {
                let ident: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !ident.is_empty() {
                    names.insert(ident);
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    walk(&workspace_root(), &mut names);
    names
}

#[test]
fn policy_md_names_only_rule_ids_the_registry_has() {
    let known: BTreeSet<&str> = RULE_IDS.iter().copied().collect();
    for row in trace_rows() {
        for id in &row.rule_ids {
            assert!(
                known.contains(id.as_str()),
                "POLICY.md row {} names rule id `{id}`, which the registry lacks",
                row.number
            );
        }
    }
}

#[test]
fn policy_md_names_only_tests_that_exist() {
    let functions = defined_functions();
    let rows = trace_rows();
    assert!(rows.len() >= 18, "POLICY.md lost rows: {} found", rows.len());
    for row in rows {
        for test in &row.tests {
            assert!(functions.contains(test), "POLICY.md row {} names test `{test}`, which does not exist", row.number);
        }
    }
}

#[test]
fn every_rule_id_has_a_row_with_a_test_named_after_it() {
    let rows = trace_rows();
    for id in RULE_IDS {
        let prefix = format!("rule_{}", id.replace('.', "_"));
        let rows_of_rule: Vec<&Row> = rows.iter().filter(|row| row.rule_ids.iter().any(|r| r == id)).collect();
        assert!(!rows_of_rule.is_empty(), "rule id `{id}` has no row in POLICY.md");
        assert!(
            rows_of_rule.iter().any(|row| row.tests.iter().any(|test| test.starts_with(&prefix))),
            "no POLICY.md row of `{id}` names a test called {prefix}…"
        );
    }
}
