//! From a list request's paging to where its page starts in the mirror.

use crate::db::listing::PageStart;
use crate::domain::paging::{Cursor, Paging};
use crate::error::ApiError;

/// Where the page `paging` asks for starts. A cursor is placed by `position`, which finds the
/// row the client names among those it sees (`what` names the kind of row in the error when
/// there is none).
pub fn start<K>(
    paging: &Paging,
    what: &str,
    position: impl FnOnce(&str) -> Result<Option<K>, diesel::result::Error>,
) -> Result<PageStart<K>, ApiError> {
    let Some(cursor) = paging.cursor() else {
        return Ok(PageStart::Offset(paging.offset()));
    };
    let key = position(cursor.id())?.ok_or_else(|| {
        ApiError::bad_request(
            "invalid_query",
            format!(
                "{}: no {what} {:?} in this app",
                cursor.parameter(),
                cursor.id()
            ),
        )
        .with_parameter(cursor.parameter())
    })?;
    Ok(match cursor {
        Cursor::StartingAfter(_) => PageStart::After(key),
        Cursor::EndingBefore(_) => PageStart::Before(key),
    })
}
