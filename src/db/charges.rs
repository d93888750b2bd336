//! Charges: the mirror of each tenant's Stripe charges (written only from what Stripe tells:
//! `charge.*` events, re-reads, answers), listed as the caller may see them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::counts::{self, Buckets};
use super::customers::Visibility;
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::{charges, customers, payments};
use super::subscriptions::unix;
use super::{AnyConnection, Applied, Rule};
use crate::stripe::objects::ChargeSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = charges)]
pub struct ChargeRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_charge_id: String,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub captured: bool,
    pub refunded: bool,
    pub paid: bool,
    pub status: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_type: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub receipt_url: Option<String>,
    pub description: Option<String>,
    pub metadata: String,
    pub stripe_created: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

super::mirror_table! {
    pub fn apply_charges(charges by stripe_charge_id, s: ChargeSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_charge_id: &s.id,
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state ChargeChangeset<'a> {
        stripe_payment_intent_id: Option<&'a str> = s.payment_intent.as_deref(),
        stripe_customer_id: Option<&'a str> = s.customer.as_deref(),
        amount: i64 = s.amount,
        amount_captured: i64 = s.amount_captured,
        amount_refunded: i64 = s.amount_refunded,
        currency: &'a str = &s.currency,
        captured: bool = s.captured,
        refunded: bool = s.refunded,
        paid: bool = s.paid,
        status: &'a str = &s.status,
        failure_code: Option<&'a str> = s.failure_code.as_deref(),
        failure_message: Option<&'a str> = s.failure_message.as_deref(),
        payment_method: Option<&'a str> = s.payment_method.as_deref(),
        payment_method_type: Option<&'a str> = s.payment_method_type.as_deref(),
        card_brand: Option<&'a str> = s.card_brand.as_deref(),
        card_last4: Option<&'a str> = s.card_last4.as_deref(),
        receipt_url: Option<&'a str> = s.receipt_url.as_deref(),
        description: Option<&'a str> = s.description.as_deref(),
        stripe_created: i64 = s.created,
    }
}

/// The receiver's write of charges (its `mirrored_types!` entry, and so every path that
/// records a charge): first each payment's refunded total is raised to its charge's (it only
/// grows, so this needs no watermark and is done whatever the charge's own outcome; payments
/// come before charges in the lock order, and are taken in key order); then the charges under
/// the watermark rule; then the refunds a charge carries, under their own watermarks as an
/// event's state. Returns the charges' outcomes.
pub fn apply_charge_events(
    conn: &mut AnyConnection,
    items: &[(&str, &ChargeSnapshot, i64)],
    rule: Rule,
) -> QueryResult<Vec<Applied>> {
    let mut raises: Vec<(&str, &str, i64)> = items
        .iter()
        .filter_map(|(tenant, c, _)| {
            let pi = c.payment_intent.as_deref()?;
            Some((*tenant, pi, c.amount_refunded))
        })
        .collect();
    raises.sort_unstable();
    for (tenant, payment_intent, amount_refunded) in raises {
        super::refunds::raise_refunded(conn, tenant, payment_intent, amount_refunded)?;
    }
    let applied = apply_charges(conn, items, rule)?;
    let mut refunds: Vec<_> = items
        .iter()
        .flat_map(|(tenant, c, at)| c.refunds.iter().map(move |r| (*tenant, r, *at)))
        .collect();
    refunds.sort_unstable_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
    refunds.dedup_by(|a, b| (a.0, &a.1.id) == (b.0, &b.1.id));
    if !refunds.is_empty() {
        super::refunds::apply_refunds(conn, &refunds, Rule::Newer)?;
    }
    Ok(applied)
}

type BoxedCharges<'a> = charges::BoxedQuery<'a, <AnyConnection as Connection>::Backend>;

/// Narrows a query to the charges the caller sees: admins all of the tenant's; others those
/// of the payments they see (ones they created, or of their customers) and those of their
/// customers: exactly as payments are seen (`payments::visible_to`).
fn visible_to<'a>(
    query: BoxedCharges<'a>,
    tenant_id: &str,
    visibility: &Visibility,
) -> BoxedCharges<'a> {
    let Visibility::Subject(subject) = visibility else {
        return query;
    };
    let their_customers = || {
        customers::table
            .filter(customers::tenant_id.eq(tenant_id.to_owned()))
            .filter(super::customers::owned_by(subject.clone()))
            .select(customers::stripe_customer_id.nullable())
    };
    let their_payments = payments::table
        .filter(payments::tenant_id.eq(tenant_id.to_owned()))
        .filter(
            payments::owner_subject
                .eq(subject.clone())
                .or(payments::stripe_customer_id.eq_any(their_customers())),
        )
        .select(payments::stripe_payment_intent_id.nullable());
    query.filter(
        charges::stripe_payment_intent_id
            .eq_any(their_payments)
            .or(charges::stripe_customer_id.eq_any(their_customers())),
    )
}

/// The caller's charge by our unique id or the `ch_` id.
pub fn find_visible(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<ChargeRow>> {
    let query = charges::table
        .filter(charges::tenant_id.eq(tenant_id.to_owned()))
        .filter(
            charges::id
                .eq(any_id.to_owned())
                .or(charges::stripe_charge_id.eq(any_id.to_owned())),
        )
        .into_boxed();
    visible_to(query, tenant_id, visibility)
        .select(ChargeRow::as_select())
        .first(conn)
        .optional()
}

/// What a charge list keeps; every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargeFilter {
    /// Any of these statuses.
    pub statuses: Option<Vec<String>>,
    /// The `pi_` id.
    pub payment_intent: Option<String>,
    /// The `cus_` id.
    pub stripe_customer_id: Option<String>,
}

/// A charge's place in the list: (Stripe's `created`, our id).
pub type SortKey = (i64, String);

/// Where a list cursor stands: the key of the charge `any_id` names (our id or the `ch_` id)
/// among those the caller sees.
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<SortKey>> {
    Ok(find_visible(conn, tenant_id, any_id, visibility)?.map(|row| (row.stripe_created, row.id)))
}

/// One page of the charges the caller sees, newest first (by Stripe's `created`), and the
/// total across pages: the tenant's counters when only statuses narrow an admin's list;
/// counted beside a shallow page's rows when it is narrowed to some customers or a payment;
/// else counted over the narrowest index.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    visibility: &Visibility,
    filter: &ChargeFilter,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<ChargeRow>> {
    let build = || {
        let mut query = charges::table
            .filter(charges::tenant_id.eq(tenant_id.to_owned()))
            .into_boxed();
        if let Some(statuses) = &filter.statuses {
            query = query.filter(charges::status.eq_any(statuses.clone()));
        }
        if let Some(pi) = &filter.payment_intent {
            query = query.filter(charges::stripe_payment_intent_id.eq(pi.clone()));
        }
        if let Some(customer) = &filter.stripe_customer_id {
            query = query.filter(charges::stripe_customer_id.eq(customer.clone()));
        }
        visible_to(query, tenant_id, visibility)
    };
    let only_statuses = ChargeFilter {
        statuses: None,
        ..filter.clone()
    } == ChargeFilter::default();
    let statuses: Option<Vec<&str>> = filter
        .statuses
        .as_ref()
        .map(|s| s.iter().map(String::as_str).collect());
    let counted = match visibility {
        Visibility::All if only_statuses => Total::Counters(Counted {
            tenant_id,
            list: counts::List::Charges,
            buckets: statuses.as_deref().map_or(Buckets::All, Buckets::Only),
        }),
        Visibility::All
            if filter.stripe_customer_id.is_none() && filter.payment_intent.is_none() =>
        {
            Total::Count
        }
        // A non-admin's customers, one customer or one payment.
        _ => Total::Narrow,
    };
    super::listing::read_page!(
        conn,
        build,
        charges,
        ChargeRow,
        (stripe_created: i64, id),
        start,
        limit,
        counted
    )
}
