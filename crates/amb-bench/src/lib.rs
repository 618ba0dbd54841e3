//! Benchmark support for the amb front end: a deterministic generator of realistic
//! ROAM programs of any size, and the statistics that describe what was generated.
//!
//! [`generate`] writes text that looks like the hand-written programs of the
//! encoding examples (`string_concat[in_ call.open call.(func[…]|open return.open_)]`,
//! call sites, arguments, data) but as large as asked:
//!
//! * The program is a **tree**. A composition whose byte budget is large is split
//!   into 3–12 *container* ambients (sometimes 1–2, which makes the depth vary), each
//!   with a share of the budget; some containers sit behind a continuation group
//!   (`in_ call.open call.(…|open return.open_)`). A composition whose budget is
//!   small is filled with *leaf parts* (templates below), at most
//!   [`Config::max_parts`] of them, so no ambient's own instruction list grows past a
//!   few hundred parts and no block comes near the 4 MiB block limit.
//! * Leaf parts are drawn from templates modelled on the examples: function
//!   ambients (`name[in_ call.open call.(func[…]|open return.open_)]`), call sites
//!   (`call[out program.in f.open_.return[open_.in program.in func]]`), arguments
//!   (`arg[string[hello[]]|in left.open_]`), small ambients with capability paths,
//!   nested data (`list[cons[head[…]|tail[…]]]`), messages, and bare capability paths
//!   (`out_ call.in_ f`, `in_ x.open x.(…)`).
//! * Names come from a vocabulary (the primitives `func`, `call`, `arg`, `return`
//!   and words such as `string`, `account`, `ledger`) with numeric suffixes
//!   (`left3`, `account_417`); about 2 % are quoted (`"hello world 17"`, a few with
//!   escapes or non-ASCII text).
//! * Layout is that of hand-written code: two-space indentation, one part per line
//!   in large compositions, short ambients on one line, the odd blank line and
//!   `//` comment line.
//! * Ambient nesting in the tree stays below [`Config::max_depth`] (20 by default),
//!   and one extra top-level part is a chain of [`Config::deep_chain`] nested
//!   ambients (3,000 by default) to show that depth costs nothing special.
//!
//! The same [`Config`] (size and seed) always gives the same bytes: the random
//! numbers come from a SplitMix64 generator written here ([`Rng`]).
//!
//! [`measure`] scans the text and reports, among others, the *average body* of an
//! ambient in two precise senses (see [`Stats`]).

use std::fmt::Write as _;

pub mod confluent;
pub mod counting_alloc;

/// The shared corpus: `AMB_CORPUS`, or `../shared/corpus` beside the repository.
pub fn corpus_dir() -> std::path::PathBuf {
    std::env::var_os("AMB_CORPUS").map_or_else(
        || {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/corpus"
            ))
        },
        std::path::PathBuf::from,
    )
}

/// The median of some samples (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One megabyte as the benchmarks count it: 10^6 bytes.
pub const MB: usize = 1_000_000;

/// A tiny deterministic pseudo-random generator (SplitMix64).
///
/// Good enough to vary a benchmark input; not for anything that needs real
/// randomness.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        // Multiply-shift (Lemire): unbiased enough for benchmark inputs.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Size to reach, in bytes. The text ends at the first part boundary past it,
    /// so it is a little longer (by at most one top-level part's tail, usually a few
    /// hundred bytes).
    pub target_bytes: usize,
    /// Seed of the random choices.
    pub seed: u64,
    /// Deepest ambient nesting in the tree of containers and leaf parts (the deep
    /// chain excepted). Default 20.
    pub max_depth: usize,
    /// Levels of the one deep chain of nested ambients; 0 for none. Default 3,000.
    pub deep_chain: usize,
    /// Most leaf parts in one composition. Default 200.
    pub max_parts: usize,
}

impl Config {
    /// The default configuration for a program of about `target_bytes` bytes.
    pub fn new(target_bytes: usize) -> Config {
        Config {
            target_bytes,
            seed: 0x5eed_0a3b_2026_1121,
            max_depth: 20,
            deep_chain: 3_000,
            max_parts: 200,
        }
    }
}

/// A generated program.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The ROAM text.
    pub text: String,
    /// Deepest ambient nesting of the tree (the deep chain excepted).
    pub tree_depth: usize,
    /// Levels of the deep chain (0 if none).
    pub chain_depth: usize,
}

/// Generates a program as [`Config`] says. Deterministic.
pub fn generate(config: &Config) -> Generated {
    let mut generator = Generator {
        out: String::with_capacity(config.target_bytes + config.target_bytes / 64 + 4096),
        rng: Rng::new(config.seed),
        config: config.clone(),
        tree_depth: 0,
    };
    generator.program();
    Generated {
        text: generator.out,
        tree_depth: generator.tree_depth,
        chain_depth: config.deep_chain,
    }
}

/// Statistics of ROAM text, from a scan of its brackets.
///
/// Definitions, for an ambient written `name[BODY]`:
///
/// * its **body bytes** are the bytes of `BODY`, strictly between its `[` and the
///   matching `]`, nested ambients included;
/// * its **own body bytes** are its body bytes less, for each ambient directly in
///   it, that child's `[`, body and `]` (the child's *name* stays counted: it is the
///   parent's `deploy`). Summed over all ambients, own body bytes count every byte
///   inside brackets exactly once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Size of the text.
    pub bytes: usize,
    /// Number of lines.
    pub lines: usize,
    /// Number of ambients (pairs of brackets).
    pub ambients: usize,
    /// Sum of the body bytes of every ambient.
    pub body_bytes: usize,
    /// Sum of the own body bytes of every ambient.
    pub own_body_bytes: usize,
    /// Deepest bracket nesting.
    pub max_depth: usize,
    /// Number of quoted names.
    pub quoted_names: usize,
    /// Number of `//` comments.
    pub comments: usize,
}

impl Stats {
    /// Average body bytes per ambient (nested ambients included).
    pub fn avg_body_bytes(&self) -> f64 {
        self.body_bytes as f64 / self.ambients.max(1) as f64
    }

    /// Average own body bytes per ambient (each byte counted once).
    pub fn avg_own_body_bytes(&self) -> f64 {
        self.own_body_bytes as f64 / self.ambients.max(1) as f64
    }

    /// Source bytes per ambient.
    pub fn bytes_per_ambient(&self) -> f64 {
        self.bytes as f64 / self.ambients.max(1) as f64
    }
}

/// Scans ROAM text for [`Stats`]. Brackets inside quoted names and comments are
/// skipped; the text is assumed to be well formed (as [`generate`]'s is).
pub fn measure(text: &[u8]) -> Stats {
    let mut stats = Stats {
        bytes: text.len(),
        lines: text.iter().filter(|&&b| b == b'\n').count()
            + usize::from(!text.is_empty() && text.last() != Some(&b'\n')),
        ..Stats::default()
    };
    // Open `[` offset and the bracketed bytes of direct children so far.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'[' => {
                stack.push((i, 0));
                stats.max_depth = stats.max_depth.max(stack.len());
            }
            b']' => {
                if let Some((open, children)) = stack.pop() {
                    let body = i - open - 1;
                    stats.ambients += 1;
                    stats.body_bytes += body;
                    stats.own_body_bytes += body - children;
                    if let Some(parent) = stack.last_mut() {
                        parent.1 += body + 2;
                    }
                }
            }
            b'"' => {
                stats.quoted_names += 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if text.get(i + 1) == Some(&b'/') => {
                stats.comments += 1;
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    stats
}

/// Common words of ambient names; the four primitives come first.
const VOCABULARY: &[&str] = &[
    "func",
    "call",
    "arg",
    "return",
    "string",
    "int",
    "concat",
    "left",
    "right",
    "length",
    "program",
    "identity",
    "map",
    "list",
    "cons",
    "head",
    "tail",
    "value",
    "counter",
    "state",
    "msg",
    "reply",
    "request",
    "token",
    "user",
    "account",
    "balance",
    "transfer",
    "key",
    "store",
    "fetch",
    "event",
    "log",
    "peer",
    "result",
    "input",
    "output",
    "buffer",
    "chunk",
    "index",
    "entry",
    "record",
    "session",
    "channel",
    "queue",
    "worker",
    "task",
    "timer",
    "ledger",
    "vote",
    "proposal",
    "signature",
    "digest",
    "payload",
    "header",
    "monoid",
    "functor",
    "compose",
    "fold",
    "filter",
];

/// Words for quoted names.
const PHRASES: &[&str] = &[
    "hello world",
    "Hello, Ambients!",
    "order #",
    "file name.txt",
    "café au lait",
    "a.b.c",
    "user@example",
    "50% off",
    "line one\\nline two",
    "say \\\"hi\\\"",
];

/// Comment lines, as people write them.
const COMMENTS: &[&str] = &[
    "// entry point of this module",
    "// hand the result back to the caller",
    "// the argument travels in, then opens",
    "// TODO: split this once it grows",
    "// see the string_concat example",
    "// wire up the two halves",
];

/// Bytes above which a composition is split into containers.
const SPLIT_BYTES: usize = 3_000;
/// Ambient nesting the leaf templates may use below a composition.
const LEAF_DEPTH: usize = 6;
/// Deepest indentation written, in levels of two spaces.
const MAX_INDENT: usize = 24;

struct Generator {
    out: String,
    rng: Rng,
    config: Config,
    tree_depth: usize,
}

impl Generator {
    fn program(&mut self) {
        // The deep chain is written first, set aside, and put in the middle.
        let mut chain = String::new();
        if self.config.deep_chain > 0 {
            self.deep_chain();
            chain = std::mem::take(&mut self.out);
        }
        let target = self.config.target_bytes.saturating_sub(chain.len());
        let mut chain_done = chain.is_empty();
        let mut parts = 0;
        self.out
            .push_str("// generated by amb-bench (deterministic; see amb_bench::generate)\n");
        while self.out.len() < target + chain.len() {
            if parts > 0 {
                self.out.push('|');
                self.out
                    .push_str(if self.rng.percent(50) { "\n\n" } else { "\n" });
            }
            parts += 1;
            if !chain_done && self.out.len() >= target / 2 {
                self.out.push_str(&chain);
                chain_done = true;
                continue;
            }
            // Top-level modules of 1/16 to 1/4 of the program, and at most 4 MB each.
            let left = (target + chain.len()).saturating_sub(self.out.len());
            let left = if chain_done { left } else { left - chain.len() };
            let share = target / self.rng.range(4, 16);
            let budget = share.min(4 * MB).min(left).max(64);
            self.container(budget, 1, 0);
        }
        if !chain_done {
            self.out.push_str("|\n");
            self.out.push_str(&chain);
        }
        self.out.push_str("|\nopen program\n");
    }

    /// Newline and indentation for `level`.
    fn newline(&mut self, level: usize) {
        self.out.push('\n');
        for _ in 0..level.min(MAX_INDENT) {
            self.out.push_str("  ");
        }
    }

    /// Separator between parts of a multi-line composition.
    fn separator(&mut self, level: usize) {
        self.out.push('|');
        if self.rng.percent(3) {
            self.out.push('\n');
        }
        if self.rng.percent(2) {
            self.newline(level);
            let comment = *self.rng.pick(COMMENTS);
            self.out.push_str(comment);
        }
        self.newline(level);
    }

    /// Separator between parts written on one line.
    fn inline_separator(&mut self) {
        self.out
            .push_str(if self.rng.percent(15) { " | " } else { "|" });
    }

    fn note_depth(&mut self, depth: usize) {
        self.tree_depth = self.tree_depth.max(depth);
    }

    /// A name: a vocabulary word, often with a numeric suffix, sometimes quoted.
    fn name(&mut self) {
        let word = *self.rng.pick(VOCABULARY);
        match self.rng.below(100) {
            0..=44 => self.out.push_str(word),
            45..=79 => {
                let n = self.rng.below(1000);
                let _ = write!(self.out, "{word}_{n}");
            }
            80..=97 => {
                let n = self.rng.below(100);
                let _ = write!(self.out, "{word}{n}");
            }
            _ => self.quoted_name(),
        }
    }

    /// A name that is not one of the primitives (for ambients that hold code).
    fn plain_name(&mut self) {
        let word = *self.rng.pick(&VOCABULARY[4..]);
        let n = self.rng.below(10_000);
        let _ = write!(self.out, "{word}_{n}");
    }

    fn quoted_name(&mut self) {
        let phrase = *self.rng.pick(PHRASES);
        let n = self.rng.below(1000);
        let _ = write!(self.out, "\"{phrase} {n}\"");
    }

    /// One capability, with a target where it takes one.
    fn capability(&mut self, last: bool) {
        match self.rng.below(100) {
            0..=21 => self.out.push_str("in "),
            22..=41 => self.out.push_str("in_ "),
            42..=55 => self.out.push_str("out "),
            56..=65 => self.out.push_str("out_ "),
            66..=87 => self.out.push_str("open "),
            88..=91 => {
                self.out
                    .push_str(if self.rng.percent(50) { "in_" } else { "out_" });
                return;
            }
            _ if last => {
                self.out.push_str("open_");
                return;
            }
            _ => self.out.push_str("open "),
        }
        self.name();
    }

    /// A path of `n` capabilities, `in_ call.open call.in x`.
    fn cap_path(&mut self, n: usize) {
        for i in 0..n {
            if i > 0 {
                self.out.push('.');
            }
            self.capability(i + 1 == n);
        }
    }

    /// The classic handshake: `in_ call.open call` (or with another name).
    fn handshake(&mut self) {
        if self.rng.percent(70) {
            self.out.push_str("in_ call.open call");
        } else {
            let start = self.out.len();
            self.out.push_str("in_ ");
            self.name();
            let name = self.out[start + 4..].to_string();
            self.out.push_str(".open ");
            self.out.push_str(&name);
        }
    }

    /// A container ambient holding a composition of about `budget` bytes.
    fn container(&mut self, budget: usize, depth: usize, level: usize) {
        self.note_depth(depth);
        self.plain_name();
        self.out.push('[');
        self.newline(level + 1);
        if depth < 8 && self.rng.percent(25) {
            // A module behind a continuation group, as in the examples.
            self.handshake();
            self.out.push_str(".(");
            self.newline(level + 2);
            self.composition(budget, depth, level + 2);
            self.out.push('|');
            self.newline(level + 2);
            self.out.push_str("open return.open_");
            self.newline(level + 1);
            self.out.push(')');
        } else {
            self.composition(budget, depth, level + 1);
        }
        self.newline(level);
        self.out.push(']');
    }

    /// A parallel composition of about `budget` bytes inside an ambient at `depth`.
    fn composition(&mut self, budget: usize, depth: usize, level: usize) {
        let end = self.out.len() + budget;
        if budget >= SPLIT_BYTES && depth + 1 + LEAF_DEPTH <= self.config.max_depth {
            let narrow = budget < 200_000 && self.rng.percent(20);
            let k = if narrow {
                self.rng.range(1, 2)
            } else {
                self.rng.range(3, 12)
            };
            for i in 0..k {
                if i > 0 {
                    self.separator(level);
                }
                if self.rng.percent(30) {
                    self.leaf_part(depth, level);
                    self.separator(level);
                }
                let left = end.saturating_sub(self.out.len()).max(64);
                let share = left / (k - i);
                let jitter = self.rng.range(50, 150);
                let child = (share * jitter / 100).clamp(64, left);
                self.container(child, depth + 1, level);
            }
            return;
        }
        let mut parts = 0;
        while parts == 0 || (self.out.len() < end && parts < self.config.max_parts) {
            if parts > 0 {
                self.separator(level);
            }
            self.leaf_part(depth, level);
            parts += 1;
        }
    }

    /// One leaf part, chosen among the templates.
    fn leaf_part(&mut self, depth: usize, level: usize) {
        match self.rng.below(100) {
            0..=17 => self.function(depth, level),
            18..=31 => self.call_site(depth),
            32..=45 => self.argument(depth),
            46..=67 => self.small_ambient(depth),
            68..=77 => self.data(depth),
            78..=87 => self.message(depth),
            _ => self.bare_path(depth),
        }
    }

    /// `f[in_ call.open call.(func[…]|open return.open_)]`, over several lines.
    fn function(&mut self, depth: usize, level: usize) {
        self.note_depth(depth + 2);
        self.plain_name();
        self.out.push('[');
        self.newline(level + 1);
        self.handshake();
        self.out.push_str(".(");
        self.newline(level + 2);
        self.out.push_str("func[");
        let items = self.rng.range(2, 5);
        for i in 0..items {
            if i > 0 {
                self.out.push('|');
            }
            self.newline(level + 3);
            if self.rng.percent(25) {
                self.nested_ambient(depth + 2, level + 3);
            } else {
                self.small_ambient(depth + 2);
            }
        }
        self.out.push('|');
        self.newline(level + 3);
        self.out.push_str("open_");
        self.newline(level + 2);
        self.out.push_str("]|");
        self.newline(level + 2);
        self.out.push_str("open return.open_");
        self.newline(level + 1);
        self.out.push(')');
        self.newline(level);
        self.out.push(']');
    }

    /// `string[\n  concat[in_ left|in_ right]|\n  in_ left|in_ right\n]`.
    fn nested_ambient(&mut self, depth: usize, level: usize) {
        self.note_depth(depth + 2);
        self.name();
        self.out.push('[');
        self.newline(level + 1);
        self.small_ambient(depth + 1);
        for _ in 0..self.rng.range(1, 3) {
            self.out.push('|');
            self.newline(level + 1);
            let n = self.rng.range(1, 3);
            self.cap_path(n);
        }
        self.newline(level);
        self.out.push(']');
    }

    /// `left[in_ arg.open arg.in string.in concat]` and kin, on one line.
    fn small_ambient(&mut self, depth: usize) {
        self.note_depth(depth + 1);
        self.name();
        self.out.push('[');
        let parts = self.rng.range(1, 3);
        for i in 0..parts {
            if i > 0 {
                self.inline_separator();
            }
            let n = self.rng.range(1, 4);
            self.cap_path(n);
        }
        self.out.push(']');
    }

    /// `call[out program.in f.open_.return[open_.in program.in func]]`.
    fn call_site(&mut self, depth: usize) {
        self.note_depth(depth + 2);
        self.out.push_str("call[out ");
        self.name();
        self.out.push_str(".in ");
        self.plain_name();
        self.out.push_str(".open_.return[open_.in ");
        self.name();
        self.out.push_str(".in func");
        if self.rng.percent(30) {
            self.out.push_str(".in func");
        }
        self.out.push_str("]]");
    }

    /// `arg[string[hello[]]|in left.open_]`.
    fn argument(&mut self, depth: usize) {
        self.note_depth(depth + 3);
        self.out.push_str("arg[");
        let kind = *self.rng.pick(&["string", "int", "value", "list"]);
        self.out.push_str(kind);
        self.out.push('[');
        if self.rng.percent(20) {
            self.quoted_name();
        } else {
            self.name();
        }
        self.out.push_str("[]]");
        self.inline_separator();
        let n = self.rng.range(2, 4);
        self.cap_path(n);
        self.out.push(']');
    }

    /// Nested data: `list[cons[head[v1[]]|tail[cons[…]|…]]|in_ x.open_]`.
    fn data(&mut self, depth: usize) {
        let cells = self.rng.range(1, 2);
        self.note_depth(depth + 2 * cells + 2);
        self.out.push_str("list[");
        for _ in 0..cells {
            self.out.push_str("cons[head[");
            self.name();
            self.out.push_str("[]]|tail[");
        }
        self.out.push_str("nil[]");
        for _ in 0..cells {
            self.out.push_str("]]");
        }
        self.inline_separator();
        let n = self.rng.range(1, 3);
        self.cap_path(n);
        self.out.push(']');
    }

    /// `msg[out a.in b.open_.reply[open_.in a]]`.
    fn message(&mut self, depth: usize) {
        self.note_depth(depth + 2);
        self.name();
        self.out.push_str("[out ");
        self.name();
        self.out.push_str(".in ");
        self.name();
        self.out.push_str(".open_.");
        self.name();
        self.out.push_str("[open_.in ");
        self.name();
        self.out.push_str("]]");
    }

    /// A bare capability path at the level of parts, with an occasional
    /// continuation group: `in_ x.open x.(y[]|open_)`.
    fn bare_path(&mut self, depth: usize) {
        if self.rng.percent(40) {
            self.note_depth(depth + 1);
            self.handshake();
            self.out.push_str(".(");
            self.name();
            self.out.push_str("[]|");
            self.small_ambient(depth);
            self.out.push_str("|open_)");
        } else {
            let n = self.rng.range(2, 4);
            self.cap_path(n);
        }
    }

    /// The deep chain: `chain[in_ step.open step.open_|link_1[…|link_2[…]]]`.
    fn deep_chain(&mut self) {
        // `chain`, then `link_1` … `link_{levels-2}`, then `done`: `levels` ambients.
        let levels = self.config.deep_chain.max(2);
        self.out.push_str("chain[");
        for i in 1..levels - 1 {
            self.out.push_str("\n  in_ step.open step.(open_|in ");
            self.name();
            let _ = write!(self.out, ")|\n  link_{i}[");
        }
        self.out.push_str("\n  done[in_ step.open step.open_]\n  ");
        for i in 1..levels - 1 {
            self.out.push(']');
            if i % 100 == 0 {
                self.out.push_str("\n  ");
            }
        }
        self.out.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let x = a.range(3, 12);
            assert!((3..=12).contains(&x));
            b.range(3, 12);
        }
    }

    #[test]
    fn generation_is_deterministic_and_sized() {
        let config = Config::new(200_000);
        let a = generate(&config);
        let b = generate(&config);
        assert_eq!(a.text, b.text);
        assert!(a.text.len() >= 200_000);
        assert!(a.text.len() < 200_000 + 64 * 1024, "{}", a.text.len());
        let other = generate(&Config { seed: 1, ..config });
        assert_ne!(a.text, other.text);
    }

    #[test]
    fn measure_counts_bodies() {
        let stats = measure(
            br#"a[in b.open_|c[x[]|in y]] | "q[" [] // d[e]
"#,
        );
        assert_eq!(stats.ambients, 4);
        // a: 22 bytes, c: 8, x: 0, "q[": 0.
        assert_eq!(stats.body_bytes, 30);
        // a's own: 22 - 10 (c's brackets and body) = 12; c's own: 8 - 2 = 6.
        assert_eq!(stats.own_body_bytes, 18);
        assert_eq!(stats.max_depth, 3);
        assert_eq!(stats.quoted_names, 1);
        assert_eq!(stats.comments, 1);
        assert_eq!(stats.lines, 1);
    }

    #[test]
    fn generated_programs_parse_and_compile() {
        for seed in 0..4 {
            let config = Config {
                seed,
                deep_chain: 500,
                ..Config::new(300_000)
            };
            let generated = generate(&config);
            let ast =
                amb_syntax::parse(&generated.text).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let stats = measure(generated.text.as_bytes());
            let ambients = (0..ast.len())
                .filter(|&i| ast.node(ast.node_id(i)).kind() == amb_syntax::NodeKind::Ambient)
                .count();
            assert_eq!(ambients, stats.ambients);
            assert!(stats.avg_own_body_bytes() >= 40.0, "{stats:?}");
            assert!(generated.tree_depth <= config.max_depth);
            assert!(generated.tree_depth >= 8, "{}", generated.tree_depth);
            assert_eq!(stats.max_depth, 500);
            assert!(stats.quoted_names > 0 && stats.comments > 0);
            amb_bytecode::compile(&ast).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
    }
}
