//! What the user sees on stderr while a command works: notes, and a spinner while waiting.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::service::BuildView;

pub trait Progress {
    /// One line of what happened ("uploaded ...").
    fn note(&mut self, message: &str);
    /// The build's latest look, while waiting.
    fn update(&mut self, view: &BuildView);
    /// Waiting is over: clear the spinner.
    fn finish(&mut self);
}

/// An `indicatif` spinner on stderr with the build, its state, phase and the time waited. When
/// stderr is not a terminal, each change of state or phase is one line instead. Always on
/// stderr, whatever `--output` says: stdout carries only the result.
pub struct Spinner {
    bar: Option<ProgressBar>,
    last: String,
    started: Instant,
}

impl Default for Spinner {
    fn default() -> Self {
        Self::new()
    }
}

impl Spinner {
    pub fn new() -> Self {
        Self {
            bar: None,
            last: String::new(),
            started: Instant::now(),
        }
    }

    fn bar(&mut self) -> &ProgressBar {
        self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} · {elapsed}")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        })
    }
}

impl Progress for Spinner {
    fn note(&mut self, message: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(message),
            _ => eprintln!("{message}"),
        }
    }

    fn update(&mut self, view: &BuildView) {
        let mut message = format!("{}  {}", view.build_id, view.status());
        if let Some(step) = &view.step {
            message = format!("{message} · {step}");
        }
        if !std::io::stderr().is_terminal() {
            if message != self.last {
                let elapsed = self.started.elapsed().as_secs();
                let _ = writeln!(std::io::stderr(), "[{elapsed:>4} s] {message}");
            }
        } else {
            self.bar().set_message(message.clone());
        }
        self.last = message;
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.finish();
    }
}
