//! docs/ARCHITECTURE.md names files and functions to read in order: every path it names
//! exists, and every `name` written just before a `(path)` is defined in that file (a
//! `fn`, `struct`, `enum`, `trait` or `type` of that name), so the tour cannot drift from
//! the code unnoticed.

use std::path::Path;

/// The backticked spans of a line, each with the text that follows it.
fn spans(line: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        out.push((&after[..end], &after[end + 1..]));
        rest = &after[end + 1..];
    }
    out
}

/// A repository path: starts with a letter, has a `/`, no spaces.
fn is_path(span: &str) -> bool {
    span.starts_with(|c: char| c.is_ascii_alphabetic())
        && span.contains('/')
        && !span.contains(' ')
        && !span.contains("::")
}

#[test]
fn every_path_and_function_in_the_tour_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tour = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("the tour");
    let (mut paths, mut names) = (0, 0);
    let mut missing = Vec::new();
    // Prose only (no fenced blocks), as one line: a name and its path may be on two lines.
    let prose: Vec<&str> = tour
        .split("```")
        .step_by(2)
        .flat_map(str::split_whitespace)
        .collect();
    let prose = prose.join(" ");
    {
        for (span, after) in spans(&prose) {
            if is_path(span) {
                paths += 1;
                if !root.join(span).exists() {
                    missing.push(format!("path {span}"));
                }
                continue;
            }
            // `name` (`path`…): the name must be defined in that file.
            let Some(path) = after
                .strip_prefix(" (`")
                .and_then(|p| p.split('`').next())
                .filter(|p| is_path(p) && p.ends_with(".rs"))
            else {
                continue;
            };
            let name = span.rsplit("::").next().unwrap_or(span);
            let source = std::fs::read_to_string(root.join(path)).unwrap_or_default();
            names += 1;
            let defined = ["fn", "struct", "enum", "trait", "type"]
                .iter()
                .any(|kind| source.contains(&format!("{kind} {name}")));
            if !defined {
                missing.push(format!("{span} in {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the tour names what does not exist: {missing:#?}"
    );
    assert!(
        paths > 40 && names > 15,
        "the tour was read: {paths} paths, {names} names"
    );
}
