//! The benchmark binary as shipped: it runs, measures, and drives `revisit` as the product does.

use std::process::{Command, Output, Stdio};

fn bench(args: &[&str], vars: &[(&str, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_revisit-bench"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("run revisit-bench")
}

/// The shipped evaluation of similar customers runs and measures: on planted cohorts with noise,
/// at least nine in ten of a customer's five most similar are of their own group
/// (docs/similar-customers.md).
#[test]
fn the_similar_customer_evaluation_measures_precision() {
    // The shipped evaluation as documented (40 groups of 10, up to 3 stray treatments each,
    // random tags, VIP levels and care notes): the character n-grams of one text scored 0.882
    // on it, the structured traits 1.000.
    let out = bench(&["similar"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let precision: f64 = stdout
        .split("precision@5: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no precision printed: {stdout}"));
    assert!(precision >= 0.9, "{precision}: {stdout}");
}

/// The fault drill's workers are this binary run as `revisit`: it answers as `revisit` does.
#[test]
fn as_revisit_it_runs_the_product_commands() {
    let out = bench(&["revisit", "lint", "张女士，祝您生日快乐！"], &[]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The peer benchmark runs `"$REVISIT_BIN" bench queue …`: a leading `bench` is accepted.
#[test]
fn a_leading_bench_word_is_accepted() {
    let out = bench(&["bench", "queue", "--help"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("--latency-secs"), "{stdout}");
}
