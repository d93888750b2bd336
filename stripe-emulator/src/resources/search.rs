//! Search: `GET /v1/customers/search` and `GET /v1/payment_intents/search`, in Stripe's
//! query language (see [`crate::search`]), answering `search_result` pages.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::resources::ctx::Ctx;
use crate::search::{Field, FieldKind, Query, SearchPaging};
use crate::store::kinds;

/// The fields Stripe lets customers be searched by.
const CUSTOMER_FIELDS: &[Field] = &[
    Field {
        name: "created",
        kind: FieldKind::Number,
        path: "created",
    },
    Field {
        name: "email",
        kind: FieldKind::Text,
        path: "email",
    },
    Field {
        name: "metadata",
        kind: FieldKind::Metadata,
        path: "metadata",
    },
    Field {
        name: "name",
        kind: FieldKind::Text,
        path: "name",
    },
    Field {
        name: "phone",
        kind: FieldKind::Text,
        path: "phone",
    },
];

/// The fields Stripe lets payment intents be searched by.
const PAYMENT_INTENT_FIELDS: &[Field] = &[
    Field {
        name: "amount",
        kind: FieldKind::Number,
        path: "amount",
    },
    Field {
        name: "created",
        kind: FieldKind::Number,
        path: "created",
    },
    Field {
        name: "currency",
        kind: FieldKind::Token,
        path: "currency",
    },
    Field {
        name: "customer",
        kind: FieldKind::Token,
        path: "customer",
    },
    Field {
        name: "metadata",
        kind: FieldKind::Metadata,
        path: "metadata",
    },
    Field {
        name: "status",
        kind: FieldKind::Token,
        path: "status",
    },
];

/// Searches the live objects of `kind` (newest first).
fn search(
    ctx: &mut Ctx<'_>,
    kind: &str,
    fields: &[Field],
    resource: &str,
    url: &str,
) -> ApiResult<Value> {
    let p = ctx.params;
    let Some(text) = p.string(&["query"])? else {
        return Err(ApiError::parameter_missing("query"));
    };
    let query = Query::parse(text, fields, resource)?;
    let paging = SearchPaging::parse(p)?;
    let total_count = p.expand()?.iter().any(|e| e == "total_count");
    let mut matches = Vec::new();
    ctx.store.scan(kind, |r| {
        if query.matches(&r.object) {
            matches.push(r.object.clone());
        }
    });
    Ok(paging.page(url, matches, total_count))
}

/// `GET /v1/customers/search` (fields `created`, `email`, `metadata`, `name`, `phone`).
pub fn customers(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    search(
        ctx,
        kinds::CUSTOMER,
        CUSTOMER_FIELDS,
        "customers",
        "/v1/customers/search",
    )
}

/// `GET /v1/payment_intents/search` (fields `amount`, `created`, `currency`, `customer`,
/// `metadata`, `status`).
pub fn payment_intents(ctx: &mut Ctx<'_>) -> ApiResult<Value> {
    search(
        ctx,
        kinds::PAYMENT_INTENT,
        PAYMENT_INTENT_FIELDS,
        "payment_intents",
        "/v1/payment_intents/search",
    )
}
