fn main() -> std::process::ExitCode {
    let cli = revisit::cli::parse();
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
        Err(e) if e.downcast_ref::<revisit::commands::Incomplete>().is_some() => {
            eprintln!("未全部完成：{e}");
            std::process::ExitCode::from(revisit::commands::EXIT_INCOMPLETE)
        }
        Err(e) => {
            // One language per message: the commands speak Chinese to staff, the layers below
            // English to whoever runs the system.
            let text = revisit::domain::privacy::redact_secrets(&format!("{e:#}"));
            let chinese = text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
            if chinese {
                eprintln!("错误：{text}");
            } else {
                eprintln!("error: {text}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
