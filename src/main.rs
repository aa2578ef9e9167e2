use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use saliency::cli::{Cli, Command};
use saliency::commands;
use saliency::pipeline::Cancelled;

/// libtorch's OpenMP threads busy-wait between parallel regions by default, stealing the
/// cores our parser and accumulator threads need (measured: 5.1 s -> 3.5 s for 1,000 CNN
/// inputs on 2 cores). libgomp reads OMP_WAIT_POLICY once, when it is loaded, so it must be
/// in the environment before the process starts: set it and re-execute once, unless the user
/// chose a policy.
#[cfg(unix)]
fn passive_openmp() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    // Commands that never run the model are not worth a second start (loading libtorch
    // alone takes about 0.4 s).
    let first = std::env::args_os().nth(1);
    if first
        .as_ref()
        .and_then(|a| a.to_str())
        .is_some_and(|a| matches!(a, "average" | "extract" | "help" | "--help" | "-h" | "--version" | "-V"))
    {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err =
        std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("OMP_WAIT_POLICY", "PASSIVE").exec();
    // exec only returns on failure: carry on in this process.
    let _ = err;
}

#[cfg(not(unix))]
fn passive_openmp() {}

fn main() -> ExitCode {
    passive_openmp();
    if let Err(e) = color_eyre::config::HookBuilder::default().display_env_section(false).install() {
        eprintln!("warning: cannot install error hooks: {e}");
    }
    let cli = Cli::parse();
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        // First Ctrl-C: stop at the next batch and clean up; a second one: leave at once.
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    let result = match &cli.command {
        Some(Command::Run(a)) => commands::run(a, &cancel),
        Some(Command::Gradients(a)) => commands::gradients(a, &cancel),
        Some(Command::Average(a)) => commands::average(a, &cancel),
        Some(Command::Extract(a)) => commands::extract(a),
        Some(Command::Explore(a)) => saliency::tui::explore(a, &cancel),
        None => saliency::tui::explore(&cli.explore, &cancel),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Cancelled>().is_some() => {
            eprintln!("interrupted: {e}");
            ExitCode::from(130)
        }
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(1)
        }
    }
}
