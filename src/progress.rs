//! Progress of `ragworker backfill`: a bar on a terminal (files, chunks, tokens, cost, rate,
//! ETA), plain periodic log lines otherwise, so CI logs and journald stay readable.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::service::Summary;

/// How often a line is logged when there is no terminal to draw a bar on.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The bar currently drawn, if any: log lines are printed above it instead of through it.
static BAR: OnceLock<ProgressBar> = OnceLock::new();

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    price_per_million: f64,
    started: Instant,
    /// None until the first line, which is logged at once so even a short run shows one.
    last_log: Option<Instant>,
}

impl Progress {
    /// `total` is the number of files eligible when the backfill starts.
    pub fn new(total: u64, price_per_million: f64, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                // Two lines, so the counts never squeeze the bar off a narrow terminal.
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} files, ETA {eta}\n  {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            let _ = BAR.set(bar.clone());
            bar
        });
        Self {
            bar,
            total,
            price_per_million,
            started: Instant::now(),
            last_log: None,
        }
    }

    fn describe(&self, s: &Summary) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut text = format!(
            "{} chunks, {} tokens, ${:.4}, {:.1} chunks/s",
            s.chunks,
            s.tokens,
            s.tokens as f64 * self.price_per_million / 1e6,
            s.chunks as f64 / secs
        );
        if s.failed > 0 {
            text.push_str(&format!(", {} failed", s.failed));
        }
        if s.retrying > 0 {
            text.push_str(&format!(", {} to retry", s.retrying));
        }
        text
    }

    /// Called after every file.
    pub fn update(&mut self, s: &Summary) {
        let done = s.completed + s.failed;
        match &self.bar {
            Some(bar) => {
                // Retried files can be claimed again within the same backfill.
                if done > self.total {
                    self.total = done;
                    bar.set_length(done);
                }
                bar.set_position(done);
                bar.set_message(self.describe(s));
            }
            None if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) => {
                self.last_log = Some(Instant::now());
                tracing::info!(
                    "progress: {done}/{} files, {}",
                    self.total.max(done),
                    self.describe(s)
                );
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Log output to stderr that steps around the progress bar when one is drawn.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match BAR.get().filter(|b| !b.is_finished()) {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_text_has_chunks_tokens_cost_and_problems() {
        let progress = Progress::new(10, 0.02, false);
        let summary = Summary {
            completed: 3,
            failed: 1,
            retrying: 2,
            chunks: 40,
            tokens: 1_000_000,
            ..Default::default()
        };
        let text = progress.describe(&summary);
        assert!(
            text.starts_with("40 chunks, 1000000 tokens, $0.0200, "),
            "{text}"
        );
        assert!(text.ends_with(", 1 failed, 2 to retry"), "{text}");
    }
}
