//! Invoices and their lines. Lines are children: they are replaced whenever the invoice's
//! state is written, and never otherwise, so they always belong to the invoice state the row
//! holds (an older event cannot bring back older lines).

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{invoice_lines, invoices};
use super::subscriptions::unix;
use super::{AnyConnection, Applied, Rule};
use crate::stripe::objects::InvoiceSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices)]
pub struct InvoiceRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_invoice_id: String,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub status: Option<String>,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    pub total: i64,
    pub number: Option<String>,
    pub hosted_invoice_url: Option<String>,
    pub metadata: String,
    pub deleted_at: Option<NaiveDateTime>,
    pub stripe_created: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoice_lines)]
pub struct InvoiceLineRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_invoice_id: String,
    pub position: i64,
    pub stripe_line_id: String,
    pub description: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub quantity: Option<i64>,
    pub price_id: Option<String>,
}

super::mirror_table! {
    pub fn apply_rows(invoices by stripe_invoice_id, s: InvoiceSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_invoice_id: &s.id,
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state InvoiceChangeset<'a> {
        stripe_customer_id: Option<&'a str> = s.customer.as_deref(),
        stripe_subscription_id: Option<&'a str> = s.subscription.as_deref(),
        status: Option<&'a str> = s.status.as_deref(),
        currency: &'a str = &s.currency,
        amount_due: i64 = s.amount_due,
        amount_paid: i64 = s.amount_paid,
        amount_remaining: i64 = s.amount_remaining,
        total: i64 = s.total,
        number: Option<&'a str> = s.number.as_deref(),
        hosted_invoice_url: Option<&'a str> = s.hosted_invoice_url.as_deref(),
        deleted_at: Option<NaiveDateTime> = s.deleted.then_some(now),
        stripe_created: i64 = s.created,
    }
}

/// Writes invoice states (watermark rule) and, for each one written, replaces its lines.
pub fn apply_invoices(
    conn: &mut AnyConnection,
    items: &[(&str, &InvoiceSnapshot, i64)],
    rule: Rule,
) -> QueryResult<Vec<Applied>> {
    let outcomes = apply_rows(conn, items, rule)?;
    let mut written: BTreeMap<&str, Vec<&InvoiceSnapshot>> = BTreeMap::new();
    for ((tenant, invoice, _), outcome) in items.iter().zip(&outcomes) {
        if *outcome == Applied::Written {
            written.entry(tenant).or_default().push(invoice);
        }
    }
    for (tenant_id, invoices) in written {
        replace_lines(conn, tenant_id, &invoices, rule)?;
    }
    Ok(outcomes)
}

#[derive(Debug, Insertable, serde::Serialize)]
#[diesel(table_name = invoice_lines)]
struct NewLine<'a> {
    id: String,
    tenant_id: &'a str,
    stripe_invoice_id: &'a str,
    position: i64,
    stripe_line_id: &'a str,
    description: Option<&'a str>,
    amount: i64,
    currency: &'a str,
    quantity: Option<i64>,
    price_id: Option<&'a str>,
}

fn replace_lines(
    conn: &mut AnyConnection,
    tenant_id: &str,
    invoices: &[&InvoiceSnapshot],
    rule: Rule,
) -> QueryResult<()> {
    // An invoice whose lines were cut (`has_more`) keeps its stored lines.
    let invoices: Vec<&InvoiceSnapshot> = invoices
        .iter()
        .copied()
        .filter(|i| i.lines_complete)
        .collect();
    if invoices.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = invoices.iter().map(|i| i.id.as_str()).collect();
    let rows: Vec<NewLine<'_>> = invoices
        .iter()
        .flat_map(|invoice| {
            invoice
                .lines
                .iter()
                .zip(0..)
                .map(|(line, position)| NewLine {
                    id: super::new_row_id(),
                    tenant_id,
                    stripe_invoice_id: &invoice.id,
                    position,
                    stripe_line_id: &line.id,
                    description: line.description.as_deref(),
                    amount: line.amount,
                    currency: &line.currency,
                    quantity: line.quantity,
                    price_id: line.price_id.as_deref(),
                })
        })
        .collect();
    super::replace_children!(
        conn,
        invoice_lines,
        stripe_invoice_id,
        tenant_id,
        &ids,
        rows,
        rule
    )
}

/// An invoice of the tenant by our unique id or `in_` id, with its lines.
pub fn find(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
) -> QueryResult<Option<(InvoiceRow, Vec<InvoiceLineRow>)>> {
    let Some(invoice) = invoices::table
        .filter(invoices::tenant_id.eq(tenant_id))
        .filter(
            invoices::stripe_invoice_id
                .eq(any_id)
                .or(invoices::id.eq(any_id)),
        )
        .select(InvoiceRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let lines = invoice_lines::table
        .filter(invoice_lines::tenant_id.eq(tenant_id))
        .filter(invoice_lines::stripe_invoice_id.eq(&invoice.stripe_invoice_id))
        .order(invoice_lines::position.asc())
        .select(InvoiceLineRow::as_select())
        .load(conn)?;
    Ok(Some((invoice, lines)))
}
