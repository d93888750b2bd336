//! Payment methods (saved cards): the mirror of the methods attached to each tenant's
//! customers. A detached method keeps its row with no customer.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::payment_methods;
use super::subscriptions::unix;
use crate::mirror::PaymentMethodSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payment_methods)]
pub struct PaymentMethodRow {
    pub id: String,
    pub tenant_id: String,
    pub stripe_payment_method_id: String,
    pub stripe_customer_id: Option<String>,
    pub method_type: String,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub card_exp_month: Option<i64>,
    pub card_exp_year: Option<i64>,
    pub metadata: String,
    pub owner_subject: String,
    pub stripe_created: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub watermark: Option<i64>,
}

#[derive(Debug, AsChangeset, Insertable)]
#[diesel(table_name = payment_methods, treat_none_as_null = true)]
struct PaymentMethodChangeset<'a> {
    stripe_customer_id: Option<&'a str>,
    method_type: &'a str,
    card_brand: Option<&'a str>,
    card_last4: Option<&'a str>,
    card_exp_month: Option<i64>,
    card_exp_year: Option<i64>,
    metadata: &'a str,
    stripe_created: i64,
    updated_at: NaiveDateTime,
    watermark: Option<i64>,
}

fn changeset<'a>(
    m: &'a PaymentMethodSnapshot,
    metadata: &'a str,
    at: i64,
    now: NaiveDateTime,
) -> PaymentMethodChangeset<'a> {
    PaymentMethodChangeset {
        stripe_customer_id: m.customer.as_deref(),
        method_type: &m.method_type,
        card_brand: m.card_brand.as_deref(),
        card_last4: m.card_last4.as_deref(),
        card_exp_month: m.card_exp_month,
        card_exp_year: m.card_exp_year,
        metadata,
        stripe_created: m.created,
        updated_at: now,
        watermark: Some(at),
    }
}

super::mirror_apply_fn!(
    apply_payment_methods, payment_methods, stripe_payment_method_id, PaymentMethodSnapshot,
    changes: changeset,
    insert(tenant, m, now) => (
        payment_methods::id.eq(uuid::Uuid::new_v4().to_string()),
        payment_methods::tenant_id.eq(tenant),
        payment_methods::stripe_payment_method_id.eq(&m.id),
        payment_methods::owner_subject.eq(""),
        payment_methods::created_at.eq(unix(Some(m.created)).unwrap_or(now)),
    ),
    [
        stripe_customer_id, method_type, card_brand, card_last4, card_exp_month, card_exp_year,
        metadata, stripe_created, updated_at, watermark,
    ]
);
