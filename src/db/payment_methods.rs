//! Payment methods (saved cards): the mirror of the methods attached to each tenant's
//! customers. A detached method keeps its row with no customer.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::counts::{self, Buckets};
use super::customers::Visibility;
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::{customers, payment_methods};
use super::subscriptions::unix;
use crate::stripe::objects::PaymentMethodSnapshot;

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

super::mirror_table! {
    pub fn apply_payment_methods(payment_methods by stripe_payment_method_id, s: PaymentMethodSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_payment_method_id: &s.id,
        owner_subject: "",
        created_at: unix(Some(s.created)).unwrap_or(now),
    }
    state PaymentMethodChangeset<'a> {
        stripe_customer_id: Option<&'a str> = s.customer.as_deref(),
        method_type: &'a str = &s.method_type,
        card_brand: Option<&'a str> = s.card_brand.as_deref(),
        card_last4: Option<&'a str> = s.card_last4.as_deref(),
        card_exp_month: Option<i64> = s.card_exp_month,
        card_exp_year: Option<i64> = s.card_exp_year,
        stripe_created: i64 = s.created,
    }
}

super::mirror_record_fn!(
    record_state, apply_payment_methods, payment_methods, stripe_payment_method_id,
    PaymentMethodSnapshot, PaymentMethodRow, owner: owner
);

/// Records a card we just attached or detached at Stripe (owned by `owner` when new); when
/// `default_of` names its customer, the card becomes that customer's default in the mirror.
pub fn record(
    conn: &mut AnyConnection,
    tenant_id: &str,
    owner: &str,
    card: &PaymentMethodSnapshot,
    now: i64,
    default_of: Option<&str>,
) -> QueryResult<PaymentMethodRow> {
    super::write_transaction(conn, |conn| {
        let row = record_state(conn, tenant_id, owner, card, now)?;
        if card.customer.is_none() {
            // Detached: no longer anyone's default.
            diesel::update(
                customers::table
                    .filter(customers::tenant_id.eq(tenant_id))
                    .filter(customers::default_payment_method.eq(&card.id)),
            )
            .set(customers::default_payment_method.eq(None::<String>))
            .execute(conn)?;
        }
        if let Some(customer) = default_of {
            diesel::update(
                customers::table
                    .filter(customers::tenant_id.eq(tenant_id))
                    .filter(customers::stripe_customer_id.eq(customer)),
            )
            .set(customers::default_payment_method.eq(&card.id))
            .execute(conn)?;
        }
        Ok(row)
    })
}

fn visible(
    conn: &mut AnyConnection,
    tenant_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<(String, Vec<String>)>> {
    Ok(match visibility {
        Visibility::All => None,
        Visibility::Subject(subject) => Some((
            subject.clone(),
            super::customers::owned_customer_ids(conn, tenant_id, subject)?,
        )),
    })
}

/// The `pm_` id of a card attached to the customer `stripe_customer_id`, named by our
/// unique id or the `pm_` id.
pub fn find_of_customer(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    stripe_customer_id: &str,
) -> QueryResult<Option<String>> {
    payment_methods::table
        .filter(payment_methods::tenant_id.eq(tenant_id))
        .filter(payment_methods::stripe_customer_id.eq(stripe_customer_id))
        .filter(
            payment_methods::id
                .eq(any_id)
                .or(payment_methods::stripe_payment_method_id.eq(any_id)),
        )
        .select(payment_methods::stripe_payment_method_id)
        .first(conn)
        .optional()
}

/// A card the caller may see, by our unique id or the `pm_` id.
pub fn find_visible(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<PaymentMethodRow>> {
    let mut query = payment_methods::table
        .filter(payment_methods::tenant_id.eq(tenant_id))
        .filter(
            payment_methods::id
                .eq(any_id)
                .or(payment_methods::stripe_payment_method_id.eq(any_id)),
        )
        .into_boxed();
    if let Some((subject, customers)) = visible(conn, tenant_id, visibility)? {
        query = query.filter(
            payment_methods::owner_subject
                .eq(subject)
                .or(payment_methods::stripe_customer_id.eq_any(customers)),
        );
    }
    query
        .select(PaymentMethodRow::as_select())
        .first(conn)
        .optional()
}

/// A card's place in the list: (our `created_at`, our id).
pub type SortKey = (NaiveDateTime, String);

/// Where a list cursor stands: the key of the card `any_id` names (our id or the `pm_` id)
/// among those the caller sees.
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<SortKey>> {
    Ok(find_visible(conn, tenant_id, any_id, visibility)?.map(|row| (row.created_at, row.id)))
}

/// One page of the attached cards the caller may see (of one customer if given), newest
/// first, each with whether it is its customer's default; and the total across pages.
pub fn list_attached(
    conn: &mut AnyConnection,
    tenant_id: &str,
    customer: Option<&str>,
    visibility: &Visibility,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<(PaymentMethodRow, bool)>> {
    let visible = visible(conn, tenant_id, visibility)?;
    let build = || {
        let mut query = payment_methods::table
            .filter(payment_methods::tenant_id.eq(tenant_id.to_owned()))
            .filter(payment_methods::stripe_customer_id.is_not_null())
            .into_boxed();
        if let Some(customer) = customer {
            query = query.filter(payment_methods::stripe_customer_id.eq(customer.to_owned()));
        }
        if let Some((subject, customers)) = &visible {
            query = query.filter(
                payment_methods::owner_subject
                    .eq(subject.clone())
                    .or(payment_methods::stripe_customer_id.eq_any(customers.clone())),
            );
        }
        query
    };
    let counted = match (&visible, customer) {
        (None, None) => Total::Counters(Counted {
            tenant_id,
            list: counts::List::Cards,
            buckets: Buckets::Only(&[counts::ATTACHED]),
        }),
        // A non-admin's customers' cards, or one customer's.
        _ => Total::Narrow,
    };
    let page = super::listing::read_page!(
        conn,
        build,
        payment_methods,
        PaymentMethodRow,
        (created_at: NaiveDateTime, id),
        start,
        limit,
        counted
    )?;
    let owners: Vec<&str> = page
        .rows
        .iter()
        .filter_map(|c| c.stripe_customer_id.as_deref())
        .collect();
    let defaults: Vec<Option<String>> = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::stripe_customer_id.eq_any(&owners))
        .select(customers::default_payment_method)
        .load(conn)?;
    let rows = page
        .rows
        .into_iter()
        .map(|card| {
            let is_default = defaults
                .iter()
                .any(|d| d.as_deref() == Some(card.stripe_payment_method_id.as_str()));
            (card, is_default)
        })
        .collect();
    Ok(Page {
        rows,
        total: page.total,
        has_more: page.has_more,
    })
}
