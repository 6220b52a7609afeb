//! The `classifier` binary; its command line lives in [`township_classifier::cli`].

fn main() -> std::process::ExitCode {
    township_classifier::cli::main(std::env::args_os())
}
