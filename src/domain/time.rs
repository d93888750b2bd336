//! How times are written on the wire: RFC 3339 in UTC with a `Z`, to the second, as the spec's
//! examples write them (used by the HTTP layer and by the use cases that build views).

use chrono::{NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// A stored UTC time.
pub fn timestamp(at: NaiveDateTime) -> String {
    at.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A Stripe unix timestamp; `None` outside chrono's range.
pub fn unix_timestamp(secs: i64) -> Option<String> {
    Utc.timestamp_opt(secs, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}
