//! The `sonnys-etl` binary: parse the command line, start telemetry, and hand
//! over to the library.

use std::process::ExitCode;

use clap::Parser;
use sonnys_etl::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sonnys_etl::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
