use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use saliency::cli::{Cli, Command};
use saliency::commands;
use saliency::pipeline::Cancelled;

fn main() -> ExitCode {
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
