//! Runs the `timeseq::cli` commands: `cargo run --release -p timeseq --example timeseq -- check|trace|bench ...`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout();
    let code = match args.first().map(String::as_str) {
        Some("check") if args.len() == 2 => {
            timeseq::cli::check(std::path::Path::new(&args[1]), &mut out).unwrap_or_else(|e| {
                eprintln!("{e}");
                1
            })
        }
        Some("trace") => timeseq::cli::trace(&args[1..], &mut out).unwrap_or_else(|e| {
            eprintln!("{e}");
            1
        }),
        Some("bench") => timeseq::cli::bench(&args[1..], &mut out).unwrap_or_else(|e| {
            eprintln!("{e}");
            1
        }),
        _ => {
            eprintln!("usage: timeseq check FILE | trace FILE --sample-rate R --samples N ... | bench FILE [--samples N]");
            1
        }
    };
    std::process::exit(code);
}
