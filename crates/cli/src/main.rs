//! The `ppe` binary: parses the command line and runs it.

use clap::Parser;

/// See the workspace Cargo.toml: the allocator is chosen for the write path's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = ppe_cli::Cli::parse();
    ppe_cli::main_with(cli)
}
