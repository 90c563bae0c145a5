/// See Cargo.toml: the vector engine's searches spend a third of their time in glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The exit status of a process whose reader went away (`revisit jobs list | head`), as the
/// shell reports one killed by SIGPIPE.
const READER_GONE: i32 = 141;

fn main() -> std::process::ExitCode {
    // A listing piped into `head` stops quietly when `head` has read enough, as other command
    // line tools do, instead of a panic. (SIGPIPE stays ignored: the daemons' sockets need it.)
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(READER_GONE);
        }
        default_hook(info);
    }));
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
