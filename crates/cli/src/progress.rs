//! What the user sees on stderr while a command works: notes, and a spinner while waiting.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::service::BuildView;
use crate::terminal::{one_line, sanitize};

pub trait Progress {
    /// One line of what happened ("uploaded ...").
    fn note(&mut self, message: &str);
    /// [`Progress::note`], passing `value` through (a note on the way).
    fn noted<T>(&mut self, message: &str, value: T) -> T
    where
        Self: Sized,
    {
        self.note(message);
        value
    }
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
        let message = note_line(message);
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(message),
            _ => eprintln!("{message}"),
        }
    }

    fn update(&mut self, view: &BuildView) {
        let message = status_line(view);
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

/// A note as printed: it names uploads and builds the service named.
pub fn note_line(message: &str) -> String {
    sanitize(message).trim_end().to_owned()
}

/// The spinner's message: build, status and step, on one line of printable text.
pub fn status_line(view: &BuildView) -> String {
    let mut message = format!("{}  {}", one_line(&view.build_id), view.status());
    if let Some(step) = &view.step {
        message = format!("{message} · {}", one_line(step));
    }
    message
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ViewState;
    use crate::terminal::tests::{assert_inert, HOSTILE};

    #[test]
    fn the_live_status_line_is_one_line_without_control_sequences() {
        for (hostile, clean) in HOSTILE {
            let view = BuildView {
                build_id: format!("cli-{hostile}"),
                state: ViewState::Running,
                step: Some(format!("BUILD{hostile}")),
                record: None,
                codebuild: None,
                error: None,
                settled: true,
            };
            let line = status_line(&view);
            assert_inert(&line);
            assert!(!line.contains(['\n', '\t']), "{line:?}");
            let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                line.contains(&format!("BUILD{clean}")),
                "{hostile:?}: {line}"
            );
        }
    }

    #[test]
    fn notes_carry_no_control_sequences() {
        for (hostile, clean) in HOSTILE {
            let note = note_line(&format!("submitted build cli-{hostile}"));
            assert_inert(&note);
            assert_eq!(note, format!("submitted build cli-{clean}").trim_end());
        }
    }
}
