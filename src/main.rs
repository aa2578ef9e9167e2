use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use saliency::cli::{Cli, Command};
use saliency::commands;

/// libtorch's OpenMP threads busy-wait between parallel regions by default, stealing the
/// cores our parser and accumulator threads need: for a CNN on 2 cores, 5.1 s -> 3.5 s for
/// 1,000 inputs with a passive wait. libgomp reads OMP_WAIT_POLICY once, when it is loaded, so
/// it must be in the environment before the process starts: set it and re-execute once. Only
/// for convolutional agents (MLPs barely use OpenMP, and a second start costs ~0.2 s), and not
/// when the user chose a policy.
#[cfg(unix)]
fn passive_openmp(cli: &Cli) {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("OMP_WAIT_POLICY").is_some() {
        return;
    }
    let agent = match &cli.command {
        Some(Command::Run(a)) => Some(&a.agent.agent_path),
        Some(Command::Ablate(a)) => Some(&a.agent_path),
        Some(Command::Validate(a)) => Some(&a.agent_path),
        Some(Command::Gradients(a)) => Some(&a.agent.agent_path),
        Some(Command::Explore(a)) => a.agent_path.as_ref().or(a.path.as_ref()),
        None => cli.explore.agent_path.as_ref().or(cli.explore.path.as_ref()),
        _ => None,
    };
    if !agent.is_some_and(|p| saliency::agent::peek_has_conv(p)) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err =
        std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("OMP_WAIT_POLICY", "PASSIVE").exec();
    // exec only returns on failure: carry on in this process.
    let _ = err;
}

#[cfg(not(unix))]
fn passive_openmp(_cli: &Cli) {}

fn main() -> ExitCode {
    if let Err(e) = color_eyre::config::HookBuilder::default().display_env_section(false).install() {
        eprintln!("warning: cannot install error hooks: {e}");
    }
    let cli = Cli::parse_from(saliency::cli::rewrite_args(std::env::args_os().collect()));
    passive_openmp(&cli);
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        // Headless, first Ctrl-C (or SIGTERM, SIGHUP): stop at the next batch and clean up; a
        // second one: leave at once. In the explorer (raw mode: Ctrl-C is a key, so this is
        // SIGTERM or a hang-up): restore the terminal and leave at once.
        let _ = ctrlc::set_handler(move || {
            if saliency::tui::EXPLORER_ACTIVE.load(Ordering::SeqCst) {
                saliency::tui::restore_terminal();
                std::process::exit(130);
            }
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
    }
    if let Some(Command::Sweep(a)) = &cli.command {
        if a.explore && a.merge.is_none() {
            let watched = commands::sweep::request(a).and_then(|req| {
                let color = saliency::tui::color::ColorMode::from_choice(a.display.color);
                saliency::tui::sweep::explore_live(req, a.display.colormap, color, a.display.mouse, &cancel)
            });
            return match watched {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => report(e),
            };
        }
        return match commands::sweep::sweep(a, &cancel) {
            Ok(code) => ExitCode::from(code),
            Err(e) => report(e),
        };
    }
    let result = match &cli.command {
        Some(Command::Run(a)) => commands::run(a, &cancel),
        Some(Command::Gradients(a)) => commands::gradients(a, &cancel),
        Some(Command::Average(a)) => commands::average(a, &cancel),
        Some(Command::Extract(a)) => commands::extract(a),
        Some(Command::Ablate(a)) => commands::ablate(a, &cancel),
        Some(Command::Validate(a)) => commands::validate(a, &cancel),
        Some(Command::Explore(a)) => saliency::tui::explore(a, &cancel),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "saliency", &mut script);
            commands::print_bytes(&script)
        }
        Some(Command::Man { dir }) => commands::man(dir.as_deref()),
        Some(Command::Sweep(_)) => Ok(()),
        None => saliency::tui::explore(&cli.explore, &cancel),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

/// An error as the exit status and one line on stderr.
fn report(e: color_eyre::Report) -> ExitCode {
    if saliency::study::is_cancelled(e.as_ref()) {
        eprintln!("interrupted: {e}");
        return ExitCode::from(130);
    }
    eprintln!("error: {}", saliency::error_text(e.as_ref()));
    ExitCode::from(1)
}
