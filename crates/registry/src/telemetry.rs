//! Logging: human-readable text by default, one JSON object per line when asked. Every
//! line of a request carries its request id through the request's span.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default filter.
pub fn init(format: LogFormat) {
    // sqlx reports every statement at INFO and a notice about its migrations table on
    // each PostgreSQL start; neither helps an operator, so they stay quiet unless
    // `RUST_LOG` names sqlx itself.
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let quiet = if directives.contains("sqlx") { String::new() } else { ",sqlx=warn".to_owned() };
    let filter = EnvFilter::try_new(format!("{directives}{quiet},tower_http=warn"))
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).try_init(),
    };
    if let Err(error) = result {
        eprintln!("logging was already set up: {error}");
    }
}
