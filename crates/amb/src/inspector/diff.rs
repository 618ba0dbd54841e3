//! The line diff of two printed terms (`amb inspect --diff`, the diff route).
//!
//! Lines the two terms share at their start and end are kept as they are; the
//! lines between are diffed by longest common subsequence when the table that
//! takes fits [`MAX_CELLS`], else all removed, then all added (a step changes a
//! small part of a large term, so the middle is small; two far-apart steps of a
//! large program could otherwise ask for gigabytes).

/// The largest LCS table (lines × lines) a diff builds.
const MAX_CELLS: usize = 4_000_000;

/// A line diff: ` ` kept, `-` removed, `+` added.
pub(crate) fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out: Vec<String> = a[..prefix].iter().map(|l| format!(" {l}")).collect();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    if (mid_a.len() + 1).saturating_mul(mid_b.len() + 1) <= MAX_CELLS {
        lcs_diff(mid_a, mid_b, &mut out);
    } else {
        out.extend(mid_a.iter().map(|l| format!("-{l}")));
        out.extend(mid_b.iter().map(|l| format!("+{l}")));
    }
    out.extend(a[a.len() - suffix..].iter().map(|l| format!(" {l}")));
    out
}

/// The longest-common-subsequence diff of `a` and `b`, onto `out`.
fn lcs_diff(a: &[&str], b: &[&str], out: &mut Vec<String>) {
    let width = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * width + j] = if a[i] == b[j] {
                lcs[(i + 1) * width + j + 1] + 1
            } else {
                lcs[(i + 1) * width + j].max(lcs[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!(" {}", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len()
            && (i == a.len() || lcs[i * width + j + 1] >= lcs[(i + 1) * width + j])
        {
            out.push(format!("+{}", b[j]));
            j += 1;
        } else {
            out.push(format!("-{}", a[i]));
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_ends_are_kept_and_a_large_middle_is_replaced_whole() {
        let diff = diff_lines("a\nb\nc\nd", "a\nx\nc\nd");
        assert_eq!(diff, [" a", "+x", "-b", " c", " d"]);
        assert_eq!(diff_lines("a\nb", "a\nb"), [" a", " b"]);
        assert_eq!(diff_lines("", "a"), ["+a"]);
        // Far too large for a table: the middle is replaced whole, quickly.
        let old: String = (0..3000).map(|i| format!("o{i}\n")).collect();
        let new: String = (0..3000).map(|i| format!("n{i}\n")).collect();
        let diff = diff_lines(&format!("top\n{old}end"), &format!("top\n{new}end"));
        assert_eq!(diff.len(), 6002);
        assert_eq!(diff[0], " top");
        assert_eq!(diff[1], "-o0");
        assert_eq!(diff[3001], "+n0");
        assert_eq!(diff[6001], " end");
    }
}
