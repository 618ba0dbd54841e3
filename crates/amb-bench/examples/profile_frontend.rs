//! A small driver for profilers: generates one program and runs one front-end phase
//! on it, with nothing else in the profile but the generation.
//!
//! ```text
//! cargo build --release -p amb-bench --example profile_frontend
//! valgrind --tool=callgrind target/release/examples/profile_frontend 1 parse
//! perf record -e cpu-clock -g target/release/examples/profile_frontend 50 compile 3
//! ```
//!
//! Arguments: size in MB (default 1), phase `parse`, `compile`, `e2e`, `fmt` (what
//! `amb fmt` does between reading and writing) or `write=FILE` (the program text
//! into FILE, to profile `amb fmt FILE` itself) (default `parse`), repetitions
//! (default 1).

use std::hint::black_box;

use amb_bench::{Config, MB, generate};
use amb_syntax::{Limits, parse_with_limits};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size: f64 = args.first().map_or(1.0, |s| s.parse().expect("size in MB"));
    let phase = args.get(1).map_or("parse", String::as_str);
    let reps: usize = args.get(2).map_or(1, |s| s.parse().expect("repetitions"));
    let text = generate(&Config::new((size * MB as f64) as usize)).text;
    let limits = Limits::default();
    // Only `compile` needs an AST beforehand.
    let ast =
        (phase == "compile").then(|| parse_with_limits(text.as_bytes(), &limits).expect("parses"));
    for _ in 0..reps {
        match phase {
            "parse" => drop(black_box(
                parse_with_limits(black_box(text.as_bytes()), &limits).expect("parses"),
            )),
            "compile" => drop(black_box(
                amb_bytecode::compile(black_box(ast.as_ref().expect("parsed"))).expect("compiles"),
            )),
            "e2e" => {
                let ast = parse_with_limits(black_box(text.as_bytes()), &limits).expect("parses");
                drop(black_box(amb_bytecode::compile(&ast).expect("compiles")));
            }
            "fmt" => {
                let mut ast =
                    parse_with_limits(black_box(text.as_bytes()), &limits).expect("parses");
                ast.canonicalize();
                let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::sink());
                amb_syntax::write_compact_with_comments(&ast, &mut out).expect("to a sink");
            }
            other if other.starts_with("write=") => {
                std::fs::write(&other["write=".len()..], &text).expect("the file is written");
            }
            other => panic!("unknown phase {other}: parse, compile, e2e, fmt or write=FILE"),
        }
    }
    println!("{phase} of {} bytes, {reps} time(s): done", text.len());
}
