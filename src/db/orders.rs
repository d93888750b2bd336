//! Orders: what a payment for an app's `order_unique_id` charges, and the claim that lets one
//! request at a time create its payment.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::orders;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub struct OrderRow {
    pub id: String,
    pub tenant_id: String,
    pub order_unique_id: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub metadata: String,
    pub user_unique_id: Option<String>,
    pub source: String,
    pub stripe_payment_intent_id: Option<String>,
    pub payment_claimed_at: Option<NaiveDateTime>,
    pub payment_attempt: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What an order says; the rest of the row is bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerms {
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    /// Stored metadata text.
    pub metadata: String,
    pub user_unique_id: Option<String>,
}

pub fn find_order(
    conn: &mut AnyConnection,
    tenant_id: &str,
    order_unique_id: &str,
) -> QueryResult<Option<OrderRow>> {
    orders::table
        .filter(orders::tenant_id.eq(tenant_id))
        .filter(orders::order_unique_id.eq(order_unique_id))
        .select(OrderRow::as_select())
        .first(conn)
        .optional()
}

/// How recording an order went.
#[derive(Debug)]
pub enum Recorded {
    Created(OrderRow),
    Updated(OrderRow),
    /// A payment for it exists: its terms can no longer change (unless they are the same).
    Paid(OrderRow),
    /// A request is creating its payment right now: its terms cannot change meanwhile.
    Busy(OrderRow),
}

/// The columns an order's terms set, on insert and on change alike.
#[derive(Debug, AsChangeset, Insertable)]
#[diesel(table_name = orders, treat_none_as_null = true)]
struct TermsColumns<'a> {
    amount: i64,
    currency: &'a str,
    description: Option<&'a str>,
    metadata: &'a str,
    user_unique_id: Option<&'a str>,
    source: &'a str,
    updated_at: NaiveDateTime,
}

/// Records an order's terms (`source`: `recorded` or `lookup`). An existing order is updated
/// while nothing pays it yet; while a payment is being created (a claim newer than
/// `claimed_after`) or once one exists, the terms are fixed, so a charge can never differ from
/// what the order said when it was paid.
pub fn record_order(
    conn: &mut AnyConnection,
    tenant_id: &str,
    order_unique_id: &str,
    terms: &OrderTerms,
    source: &str,
    claimed_after: NaiveDateTime,
) -> QueryResult<Recorded> {
    super::write_transaction(conn, |conn| {
        let now = chrono::Utc::now().naive_utc();
        let columns = TermsColumns {
            amount: terms.amount,
            currency: &terms.currency,
            description: terms.description.as_deref(),
            metadata: &terms.metadata,
            user_unique_id: terms.user_unique_id.as_deref(),
            source,
            updated_at: now,
        };
        let (id, created) = match find_order(conn, tenant_id, order_unique_id)? {
            Some(existing) if existing.stripe_payment_intent_id.is_some() => {
                return Ok(Recorded::Paid(existing));
            }
            Some(existing) if existing.terms() == *terms => return Ok(Recorded::Updated(existing)),
            Some(existing)
                if existing
                    .payment_claimed_at
                    .is_some_and(|at| at >= claimed_after) =>
            {
                return Ok(Recorded::Busy(existing));
            }
            Some(existing) => {
                diesel::update(orders::table.find(&existing.id))
                    .set(&columns)
                    .execute(conn)?;
                (existing.id, false)
            }
            None => {
                let id = super::new_row_id();
                diesel::insert_into(orders::table)
                    .values((
                        orders::id.eq(&id),
                        orders::tenant_id.eq(tenant_id),
                        orders::order_unique_id.eq(order_unique_id),
                        orders::created_at.eq(now),
                        &columns,
                    ))
                    .execute(conn)?;
                (id, true)
            }
        };
        let row = orders::table
            .find(&id)
            .select(OrderRow::as_select())
            .first(conn)?;
        Ok(if created {
            Recorded::Created(row)
        } else {
            Recorded::Updated(row)
        })
    })
}

impl OrderRow {
    /// What the order says.
    pub fn terms(&self) -> OrderTerms {
        OrderTerms {
            amount: self.amount,
            currency: self.currency.clone(),
            description: self.description.clone(),
            metadata: self.metadata.clone(),
            user_unique_id: self.user_unique_id.clone(),
        }
    }
}

/// How a claim on paying an order went.
#[derive(Debug)]
pub enum PaymentClaim {
    /// This request may create the order's payment now, for the order as it stands (read
    /// under the claim: its terms cannot change until the claim ends).
    Claimed(Box<OrderRow>),
    /// The order has a payment already.
    Paid(String),
    /// Another request is creating its payment (its claim is younger than the lease).
    Busy,
}

/// Claims the right to create order `id`'s payment: atomic across requests and instances (a
/// conditional update), lapsing after `lease` so a request that died leaves no order stuck.
pub fn claim_payment(
    conn: &mut AnyConnection,
    id: &str,
    lease: chrono::TimeDelta,
) -> QueryResult<PaymentClaim> {
    let now = chrono::Utc::now().naive_utc();
    let (claimed, row) = super::write_statement(conn, |conn| {
        let claimed = diesel::update(
            orders::table
                .find(id)
                .filter(orders::stripe_payment_intent_id.is_null())
                .filter(
                    orders::payment_claimed_at
                        .is_null()
                        .or(orders::payment_claimed_at.lt(now - lease)),
                ),
        )
        .set(orders::payment_claimed_at.eq(Some(now)))
        .execute(conn)?;
        let row = orders::table
            .find(id)
            .select(OrderRow::as_select())
            .first(conn)?;
        QueryResult::Ok((claimed, row))
    })?;
    Ok(match (claimed, row.stripe_payment_intent_id.clone()) {
        (1, _) => PaymentClaim::Claimed(Box::new(row)),
        (_, Some(pi)) => PaymentClaim::Paid(pi),
        (_, None) => PaymentClaim::Busy,
    })
}

/// Drops order `id`'s payment intent `pi` (it can no longer be paid: canceled at Stripe) so a
/// new one can be made; the attempt number moves on, and with it Stripe's idempotency key.
pub fn drop_payment(conn: &mut AnyConnection, id: &str, pi: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(
            orders::table
                .find(id)
                .filter(orders::stripe_payment_intent_id.eq(pi)),
        )
        .set((
            orders::stripe_payment_intent_id.eq(None::<String>),
            orders::payment_attempt.eq(orders::payment_attempt + 1),
            orders::updated_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(conn)
    })
    .map(|_| ())
}

/// Gives a claim up without a payment (Stripe refused before creating one).
pub fn release_payment(conn: &mut AnyConnection, id: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(
            orders::table
                .find(id)
                .filter(orders::stripe_payment_intent_id.is_null()),
        )
        .set(orders::payment_claimed_at.eq(None::<NaiveDateTime>))
        .execute(conn)
    })
    .map(|_| ())
}

/// Notes the payment intent that pays order `id`, unless another one was noted first;
/// returns the one that pays it.
pub fn mark_paid(conn: &mut AnyConnection, id: &str, payment_intent: &str) -> QueryResult<String> {
    super::write_transaction(conn, |conn| {
        diesel::update(
            orders::table
                .find(id)
                .filter(orders::stripe_payment_intent_id.is_null()),
        )
        .set((
            orders::stripe_payment_intent_id.eq(payment_intent),
            orders::payment_claimed_at.eq(None::<NaiveDateTime>),
            orders::updated_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(conn)?;
        orders::table
            .find(id)
            .select(orders::stripe_payment_intent_id)
            .first::<Option<String>>(conn)
            .map(|pi| pi.unwrap_or_else(|| payment_intent.to_owned()))
    })
}
