//! Text for people: short numbers and summaries of repeated messages, shared by the commands
//! and the explorer.

/// Short number text for tables: 4 decimals, or 2 significant digits in exponent form.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e-3 && x.abs() < 1e5 {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        // at most 7 characters: "4.0e-5", "1.5e-12"
        format!("{x:.1e}")
    }
}

/// How many of a run of similar messages are shown before the rest are counted.
pub const SHOWN_WARNINGS: usize = 10;

/// The first `keep` of `lines`, then one line counting the rest (`what` names them: "more
/// candidates skipped"). Repeated warnings never flood a terminal or a log.
pub fn summarise(lines: &[String], keep: usize, what: &str) -> Vec<String> {
    let mut out: Vec<String> = lines.iter().take(keep).cloned().collect();
    if lines.len() > keep {
        out.push(format!("... and {} {what}", lines.len() - keep));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_summaries() {
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(1.5e-12), "1.5e-12");
        assert_eq!(num(0.0), "0");
        let lines: Vec<String> = (0..300_000).map(|i| format!("skipping candidate {i}")).collect();
        let s = summarise(&lines, 3, "more candidates skipped");
        assert_eq!(
            s,
            [
                "skipping candidate 0",
                "skipping candidate 1",
                "skipping candidate 2",
                "... and 299997 more candidates skipped"
            ]
        );
        assert_eq!(summarise(&lines[..2], 3, "more"), lines[..2].to_vec());
    }
}
