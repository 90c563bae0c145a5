//! The house's layers (docs/architecture.md), read from the source: a top-level module of `src/`
//! names only modules of its own layer or below, and no modules name each other in a circle.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Each top-level module's layer, lowest first. A module may use its own layer and those below.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["config"],
    &[
        "store",
        "llm",
        "notify",
        "projections",
        "metrics",
        "report",
        "analytics",
    ],
    &["app"],
    &["handlers", "consent", "import"],
    &["queue"],
    &["commands", "api", "cli", "telemetry"],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| {
            panic!("module {module} has no layer: add it to LAYERS and to docs/architecture.md")
        })
}

/// The top-level modules each file's code (not its comments) names through `crate::`.
fn uses(src: &Path, top: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let from = rel
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_owned();
            let code: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut named = BTreeSet::new();
            // `crate::name`
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    // `crate::{a, b::c, d::{e, f}}`: the first name of each entry at depth 0.
                    let mut depth = 0;
                    let mut entry = String::new();
                    for c in group.chars() {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => break,
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                named.insert(first_name(&entry));
                                entry.clear();
                                continue;
                            }
                            _ => {}
                        }
                        if depth == 0 {
                            entry.push(c);
                        }
                    }
                    named.insert(first_name(&entry));
                } else {
                    named.insert(first_name(rest));
                }
            }
            for name in named {
                if top.contains(&name) && name != from {
                    out.entry(from.clone())
                        .or_default()
                        .insert((name, rel.clone()));
                }
            }
        }
    }
    out
}

fn first_name(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn modules_use_only_their_layer_and_below_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let top: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .filter(|m| m != "main" && m != "lib")
        .collect();
    let graph = uses(&src, &top);

    let mut upward = Vec::new();
    for (from, named) in &graph {
        for (to, file) in named {
            if layer_of(to) > layer_of(from) {
                upward.push(format!("{file} ({from}) uses {to}, a higher layer"));
            }
        }
    }
    assert!(upward.is_empty(), "{}", upward.join("\n"));

    // No circle, within a layer either: every module can be ordered after what it uses.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut left: Vec<&str> = top.iter().map(String::as_str).collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|m| {
            let ready = graph
                .get(*m)
                .is_none_or(|named| named.iter().all(|(to, _)| done.contains(to.as_str())));
            if ready {
                done.insert(m);
            }
            !ready
        });
        assert!(
            left.len() < before,
            "modules in a circle: {}",
            left.iter()
                .map(|m| format!(
                    "{m} uses {:?}",
                    graph[*m]
                        .iter()
                        .filter(|(to, _)| left.contains(&to.as_str()))
                        .collect::<Vec<_>>()
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}
