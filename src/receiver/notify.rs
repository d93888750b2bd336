//! The outbox side of applying events: what the tenant's app is told, written in the same
//! transaction as the mirror change (`crate::outbound::notifications` delivers it).

use diesel::result::Error as DieselError;

use super::event::Pending;
use crate::db::AnyConnection;

/// Writes to the outbox the notifications of the deliveries that were applied, in the same
/// transaction as their mirror change.
pub(super) fn enqueue_notifications<'a>(
    conn: &mut AnyConnection,
    applied: impl Iterator<Item = &'a Pending>,
) -> Result<(), DieselError> {
    let rows: Vec<_> = applied
        .filter(|p| p.notify)
        .filter_map(|p| {
            let (kind, data) = p.event.notification.as_ref()?;
            Some(crate::outbound::notifications::outbox_row(
                &p.tenant_id,
                &p.event.id,
                kind,
                data,
            ))
        })
        .collect();
    crate::db::notifications::enqueue(conn, &rows)
}
