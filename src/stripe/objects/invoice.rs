//! Invoices and the lines they carry.

use std::collections::HashMap;

use serde_json::Value;

use super::fields::{
    Fields::{self, All},
    ID,
};
use super::{flag, id_of, int, metadata, text};

#[derive(Debug, Clone)]
pub struct InvoiceSnapshot {
    pub id: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub status: Option<String>,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub total: i64,
    pub number: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub metadata: HashMap<String, String>,
    pub created: i64,
    pub deleted: bool,
    /// The lines the object carries (Stripe embeds the first page).
    pub lines: Vec<InvoiceLineSnapshot>,
    /// `lines` is the whole list (with `has_more`, the stored lines are left as they are, and
    /// a sync pages the rest).
    pub lines_complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLineSnapshot {
    pub id: String,
    pub description: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub quantity: Option<i64>,
    pub price_id: Option<String>,
}

/// What [`invoice`] reads of each line (also a page of `/v1/invoices/{id}/lines`).
const LINE_FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("description", All),
    ("amount", All),
    ("currency", All),
    ("quantity", All),
    (
        "pricing",
        Fields::Only(&[("price_details", Fields::Only(&[("price", ID)]))]),
    ),
    ("price", ID),
    ("plan", ID),
]);

/// What [`invoice`] reads (a sync parses its pages into only this).
pub const FIELDS: Fields = Fields::Only(&[
    ("id", All),
    ("deleted", All),
    ("currency", All),
    ("customer", ID),
    (
        "parent",
        Fields::Only(&[(
            "subscription_details",
            Fields::Only(&[("subscription", ID)]),
        )]),
    ),
    ("subscription", ID),
    ("status", All),
    ("amount_due", All),
    ("amount_paid", All),
    ("amount_remaining", All),
    ("total", All),
    ("number", All),
    ("hosted_invoice_url", All),
    ("metadata", All),
    ("created", All),
    (
        "lines",
        Fields::Only(&[("data", LINE_FIELDS), ("has_more", All)]),
    ),
]);

pub fn invoice(obj: &Value, deleted: bool) -> Option<InvoiceSnapshot> {
    let currency = text(obj, "currency")?;
    let lines = obj
        .pointer("/lines/data")
        .and_then(Value::as_array)
        .map(|lines| lines.iter().filter_map(|l| line(l, &currency)).collect())
        .unwrap_or_default();
    Some(InvoiceSnapshot {
        id: text(obj, "id")?,
        customer: id_of(obj, "customer"),
        // Since 2025 under parent.subscription_details; before, on the invoice.
        subscription: obj
            .pointer("/parent/subscription_details")
            .and_then(|d| id_of(d, "subscription"))
            .or_else(|| id_of(obj, "subscription")),
        status: text(obj, "status"),
        amount_due: int(obj, "amount_due").unwrap_or_default(),
        amount_paid: int(obj, "amount_paid").unwrap_or_default(),
        amount_remaining: int(obj, "amount_remaining").unwrap_or_default(),
        total: int(obj, "total").unwrap_or_default(),
        number: text(obj, "number"),
        hosted_invoice_url: text(obj, "hosted_invoice_url"),
        metadata: metadata(obj),
        created: int(obj, "created").unwrap_or_default(),
        deleted: deleted || flag(obj, "deleted", false),
        currency,
        lines,
        lines_complete: obj.pointer("/lines/has_more").and_then(Value::as_bool) != Some(true),
    })
}

fn line(l: &Value, currency: &str) -> Option<InvoiceLineSnapshot> {
    Some(InvoiceLineSnapshot {
        id: text(l, "id")?,
        description: text(l, "description"),
        amount: int(l, "amount")?,
        currency: text(l, "currency").unwrap_or_else(|| currency.to_owned()),
        quantity: int(l, "quantity"),
        // Since 2025 under pricing.price_details; before, the line's price.
        price_id: l
            .pointer("/pricing/price_details/price")
            .and_then(|p| match p {
                Value::String(id) => Some(id.clone()),
                other => text(other, "id"),
            })
            .or_else(|| id_of(l, "price"))
            .or_else(|| l.get("plan").and_then(|p| text(p, "id"))),
    })
}
