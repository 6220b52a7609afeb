//! The `registry` binary; its command line lives in [`township_registry::cli`].

fn main() -> std::process::ExitCode {
    township_registry::cli::main(std::env::args_os())
}
