use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = revisit::cli::Cli::parse();
    revisit::telemetry::init(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(revisit::commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误 error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
