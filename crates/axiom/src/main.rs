use clap::Parser;

fn main() -> std::process::ExitCode {
    let options = axiom::cli::Options::parse();
    axiom::logging::init();
    axiom::limits::raise_fd_limit();
    match axiom::run(options) {
        Ok(status) => std::process::ExitCode::from(status),
        Err(err) => {
            eprintln!("axiom: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
