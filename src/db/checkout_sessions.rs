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

// A session first seen in an event belongs to no caller (admins see it).
super::mirror_table! {
    pub fn apply_sessions(checkout_sessions by stripe_session_id, s: CheckoutSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_session_id: &s.id,
        owner_subject: "",
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state CheckoutChangeset<'a> {
        mode: &'a str = &s.mode,
        status: Option<&'a str> = s.status.as_deref(),
        payment_status: &'a str = &s.payment_status,
        url: Option<&'a str> = s.url.as_deref(),
        amount_total: Option<i64> = s.amount_total,
        currency: Option<&'a str> = s.currency.as_deref(),
        stripe_customer_id: Option<&'a str> = s.customer.as_deref(),
        customer_email: Option<&'a str> = s.customer_email.as_deref(),
        success_url: Option<&'a str> = s.success_url.as_deref(),
        cancel_url: Option<&'a str> = s.cancel_url.as_deref(),
        stripe_payment_intent_id: Option<&'a str> = s.payment_intent.as_deref(),
        stripe_subscription_id: Option<&'a str> = s.subscription.as_deref(),
        expires_at: Option<NaiveDateTime> = unix(Some(s.expires_at)),
    }
}

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
