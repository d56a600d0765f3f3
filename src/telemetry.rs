//! Logging setup. Under the Functions host, stdout and stderr are forwarded to Application
//! Insights and stderr counts as errors there, so ERROR goes to stderr and everything else to
//! stdout, as JSON lines; on a terminal the same events print as readable text.
//!
//! Fields, not prose, carry the table, database and job, so lines can be queried. Nothing that
//! holds a secret implements Display with its value (see `settings::Secret`).

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::settings::LogFormat;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// ERROR to stderr, the rest to stdout: what the Functions host expects.
    Host,
    /// Everything to stderr: for verbs whose stdout is their report (`status`, `verify`), so a
    /// script can parse it.
    Stderr,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init(format: &LogFormat, sink: Sink) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = std::io::stderr
        .with_max_level(match sink {
            Sink::Host => Level::ERROR,
            Sink::Stderr => Level::TRACE,
        })
        .or_else(std::io::stdout);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}
