//! Progress bars for long replays and verifications: drawn on standard error when it
//! is a terminal, never when it is piped or redirected.

use std::{cell::RefCell, io::IsTerminal};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A [`amb_vm::verify::Progress`] that draws a bar per phase on a terminal.
#[derive(Debug, Default)]
pub(crate) struct Bar {
    current: RefCell<Option<ProgressBar>>,
}

impl Bar {
    /// A bar if standard error is a terminal; otherwise nothing is drawn.
    pub(crate) fn on_terminal() -> Option<Bar> {
        std::io::stderr().is_terminal().then(Bar::default)
    }
}

impl amb_vm::verify::Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {human_pos}/{human_len} {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message(phase.to_string());
        *self.current.borrow_mut() = Some(bar);
    }

    fn advance(&self, units: u64) {
        if let Some(bar) = &*self.current.borrow() {
            bar.inc(units);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.current.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }
}

/// The progress reporter for this process: a bar on a terminal, else nothing.
pub(crate) fn reporter() -> Box<dyn amb_vm::verify::Progress> {
    match Bar::on_terminal() {
        Some(bar) => Box::new(bar),
        None => Box::new(()),
    }
}
