//! Logging: text for people, JSON for log pipelines; RUST_LOG overrides the configured level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogSettings;

/// `progress_bar`: a backfill draws a bar on this terminal, which already shows what the
/// per-file info lines would say; then only warnings and errors are printed (above the
/// bar), unless RUST_LOG asks for more.
pub fn init(settings: &LogSettings, progress_bar: bool) {
    let level = if progress_bar && settings.level == "info" {
        "warn"
    } else {
        settings.level.as_str()
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},aws_config=warn,aws_smithy_runtime=warn,sqlx=warn,lopdf=error,pdf_extract=error"
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::LogWriter)
        // The writer is ours, so the subscriber cannot tell whether stderr is a terminal.
        .with_ansi(std::io::stderr().is_terminal());
    // try_init: a second call (tests, embedding programs) keeps the first subscriber.
    let _ = if settings.format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Panics are written through the log, as one event in its format, instead of by the
/// standard hook on stderr (which breaks a JSON log pipeline's lines). Most are a document
/// parser's bug on one file, caught around its extraction: that file is read another way
/// or fails with a short `last_error`, and the worker goes on. RUST_BACKTRACE adds the
/// backtrace as a field. For the `ragworker` binary only: a test harness keeps its own.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(panic = %message, %location, %thread, %backtrace, "panicked");
        } else {
            tracing::error!(panic = %message, %location, %thread, "panicked");
        }
    }));
}
