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
