//! Checkout session rows: the mirror of the sessions each tenant opened.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::customers::Visibility;
use super::schema::checkout_sessions;
use super::subscriptions::unix;
use crate::stripe::objects::CheckoutSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = checkout_sessions)]
pub struct CheckoutSessionRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_session_id: String,
    pub mode: String,
    pub status: Option<String>,
    pub payment_status: String,
    pub url: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub customer_email: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub stripe_payment_intent_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub expires_at: Option<NaiveDateTime>,
    pub metadata: String,
    pub owner_subject: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

/// Every column Stripe's state decides.
#[derive(Debug, AsChangeset, Insertable, serde::Serialize)]
#[diesel(table_name = checkout_sessions, treat_none_as_null = true)]
struct CheckoutChangeset<'a> {
    mode: &'a str,
    status: Option<&'a str>,
    payment_status: &'a str,
    url: Option<&'a str>,
    amount_total: Option<i64>,
    currency: Option<&'a str>,
    stripe_customer_id: Option<&'a str>,
    customer_email: Option<&'a str>,
    success_url: Option<&'a str>,
    cancel_url: Option<&'a str>,
    stripe_payment_intent_id: Option<&'a str>,
    stripe_subscription_id: Option<&'a str>,
    expires_at: Option<NaiveDateTime>,
    metadata: &'a str,
    updated_at: NaiveDateTime,
    watermark: Option<i64>,
}

fn changeset<'a>(
    s: &'a CheckoutSnapshot,
    metadata: &'a str,
    at: i64,
    now: NaiveDateTime,
) -> CheckoutChangeset<'a> {
    CheckoutChangeset {
        mode: &s.mode,
        status: s.status.as_deref(),
        payment_status: &s.payment_status,
        url: s.url.as_deref(),
        amount_total: s.amount_total,
        currency: s.currency.as_deref(),
        stripe_customer_id: s.customer.as_deref(),
        customer_email: s.customer_email.as_deref(),
        success_url: s.success_url.as_deref(),
        cancel_url: s.cancel_url.as_deref(),
        stripe_payment_intent_id: s.payment_intent.as_deref(),
        stripe_subscription_id: s.subscription.as_deref(),
        expires_at: unix(Some(s.expires_at)),
        metadata,
        updated_at: now,
        watermark: Some(at),
    }
}

// A session first seen in an event belongs to no caller (admins see it).
super::mirror_apply_fn!(
    apply_sessions, checkout_sessions, stripe_session_id, CheckoutSnapshot,
    changes: changeset,
    insert(tenant, s, now) => (
        checkout_sessions::id.eq(uuid::Uuid::new_v4().to_string()),
        checkout_sessions::tenant_id.eq(tenant),
        checkout_sessions::stripe_session_id.eq(&s.id),
        checkout_sessions::owner_subject.eq(""),
        checkout_sessions::created_at.eq(unix(Some(s.created)).unwrap_or(now)),
    ),
    [
        mode, status, payment_status, url, amount_total, currency, stripe_customer_id,
        customer_email, success_url, cancel_url, stripe_payment_intent_id,
        stripe_subscription_id, expires_at, metadata, updated_at, watermark,
    ]
);

/// A session by our unique id or the `cs_` id, if the caller may see it (admins: all of the
/// tenant's; others: the sessions they opened).
pub fn find_visible(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<CheckoutSessionRow>> {
    let mut query = checkout_sessions::table
        .filter(checkout_sessions::tenant_id.eq(tenant_id))
        .filter(
            checkout_sessions::id
                .eq(any_id)
                .or(checkout_sessions::stripe_session_id.eq(any_id)),
        )
        .into_boxed();
    if let Visibility::Subject(subject) = visibility {
        query = query.filter(checkout_sessions::owner_subject.eq(subject.clone()));
    }
    query
        .select(CheckoutSessionRow::as_select())
        .first(conn)
        .optional()
}

super::mirror_record_fn!(
    record, apply_sessions, checkout_sessions, stripe_session_id, CheckoutSnapshot,
    CheckoutSessionRow, owner: owner
);
