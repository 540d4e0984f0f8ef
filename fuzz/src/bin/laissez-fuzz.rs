//! `cargo run -p laissez-fuzz --release -- TARGET [SECONDS] [SEED]`: runs one
//! target longer than CI does; `list` names the targets.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        eprintln!("usage: laissez-fuzz TARGET|list [SECONDS] [SEED]");
        return ExitCode::from(2);
    };
    if name == "list" {
        laissez_fuzz::all()
            .iter()
            .for_each(|t| println!("{}", t.name));
        return ExitCode::SUCCESS;
    }
    let Some(target) = laissez_fuzz::find(name) else {
        eprintln!("laissez-fuzz: no target '{name}' (try: laissez-fuzz list)");
        return ExitCode::from(2);
    };
    let seconds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(600);
    let seed = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let outcome = laissez_fuzz::driver::run(target, &corpus, Duration::from_secs(seconds), seed);
    println!(
        "{name}: seed {seed}, {} executions, slowest input {:?}",
        outcome.executions, outcome.slowest
    );
    if outcome.crashes.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("laissez-fuzz: crashes: {:?}", outcome.crashes);
        ExitCode::from(1)
    }
}
