//! The `pullgate` binary: everything lives in the library; see `pullgate::cli`.

fn main() -> std::process::ExitCode {
    pullgate::cli::main()
}
