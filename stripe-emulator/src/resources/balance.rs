//! `GET /v1/balance`: the balance of the key's account (see [`crate::objects::balance`]).

use serde_json::Value;

use crate::error::ApiResult;
use crate::objects::balance::balance;
use crate::resources::ctx::Ctx;

/// `GET /v1/balance`.
pub fn retrieve(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    Ok(balance(ctx.store, ctx.now))
}
