//! Logging: one subscriber, human or JSON lines, filtered by RUST_LOG or the configured filter.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Puts the authenticated tenant on the current request's span (`tenant.id`).
pub fn record_tenant(tenant_id: &str) {
    tracing::Span::current().record("tenant.id", tenant_id);
}

/// Puts a webhook event's ids on the current request's span (`stripe.event_id`,
/// `stripe.object_id`).
pub fn record_event(event_id: &str, object_id: Option<&str>) {
    let span = tracing::Span::current();
    span.record("stripe.event_id", event_id);
    if let Some(object_id) = object_id {
        span.record("stripe.object_id", object_id);
    }
}

/// Puts the id of a Stripe request on the current request's span (`stripe.request_id`).
pub fn record_stripe_request(request_id: &str) {
    tracing::Span::current().record("stripe.request_id", request_id);
}
