//! The `shiplog` binary: parse arguments, run, and turn any error into one line and exit 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    match shiplog::cli::main() {
        Ok(code) => code,
        Err(e) => {
            // A closed stdout (`shiplog releases list | head`) is not an error worth a message.
            if e.is_broken_pipe() {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
