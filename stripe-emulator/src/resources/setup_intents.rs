//! Setup intents, as completed checkout sessions in `setup` mode create them: retrieve.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::ctx::Ctx;
use crate::store::kinds;

/// How setup intents are named in "No such ..." messages.
pub const LABEL: &str = "setup_intent";

/// `GET /v1/setup_intents/:id`.
pub fn retrieve(ctx: &mut Ctx<'_>, id: &str) -> ApiResult<Value> {
    ctx.store
        .get_live(kinds::SETUP_INTENT, id)
        .map(|r| r.object.clone())
        .ok_or_else(|| ApiError::resource_missing(LABEL, id, "id"))
}
