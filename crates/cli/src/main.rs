//! The `ppe` binary: parses the command line and runs it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ppe_cli::Cli::parse();
    ppe_cli::main_with(cli)
}
