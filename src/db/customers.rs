//! Customer rows: the mirror of the Stripe customers each tenant created.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::counts::{self, Buckets};
use super::listing::{Counted, Page, PageStart, Total};
use super::schema::customers;
use crate::stripe::objects::CustomerSnapshot;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customers)]
pub struct Customer {
    pub id: String,
    pub tenant_id: String,
    pub stripe_customer_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub default_payment_method: Option<String>,
    pub metadata: String,
    pub user_unique_id: Option<String>,
    pub identity_type: String,
    pub company_unique_id: Option<String>,
    pub entity_unique_id: Option<String>,
    pub entity_type: Option<String>,
    pub owner_subject: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    pub watermark: Option<i64>,
}

/// Whom a customer created through our API stands for, and who created it.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub owner_subject: &'a str,
    pub user_unique_id: Option<&'a str>,
    pub identity_type: &'a str,
    pub company_unique_id: Option<&'a str>,
    pub entity_unique_id: Option<&'a str>,
    pub entity_type: Option<&'a str>,
}

/// Who may see which customers of a tenant.
#[derive(Debug, Clone)]
pub enum Visibility {
    /// Admins see everything of the tenant.
    All,
    /// Other callers see the customers created by them or for them, and what belongs to those.
    Subject(String),
}

/// Mirrors a customer our API just created at Stripe (its answer wins over a stored state of
/// the same second) and makes it `identity`'s. The row may already exist: Stripe's
/// `customer.created` delivery can be mirrored before the creating request gets here, and then
/// the row, which nobody owns yet, is claimed instead of inserted twice (a second insert would
/// fail on the unique `cus_` id and answer 409 for a customer that exists).
pub fn record_created(
    conn: &mut AnyConnection,
    tenant_id: &str,
    identity: &Identity<'_>,
    snapshot: &CustomerSnapshot,
    now: i64,
) -> QueryResult<Customer> {
    super::write_transaction(conn, |conn| {
        apply_customers(
            conn,
            &[(tenant_id, snapshot, now)],
            super::Rule::NewerOrEqual,
        )?;
        let mine = customers::table
            .filter(customers::tenant_id.eq(tenant_id))
            .filter(customers::stripe_customer_id.eq(&snapshot.id));
        diesel::update(mine.filter(customers::owner_subject.eq("")))
            .set((
                customers::owner_subject.eq(identity.owner_subject),
                customers::user_unique_id.eq(identity.user_unique_id),
                customers::identity_type.eq(identity.identity_type),
                customers::company_unique_id.eq(identity.company_unique_id),
                customers::entity_unique_id.eq(identity.entity_unique_id),
                customers::entity_type.eq(identity.entity_type),
            ))
            .execute(conn)?;
        mine.select(Customer::as_select()).first(conn)
    })
}

/// Mirrors Stripe's answer to a change this service asked for (it wins over a stored state
/// of the same second, as a creation's does) and returns the row, deleted or not.
pub fn record_state(
    conn: &mut AnyConnection,
    tenant_id: &str,
    snapshot: &CustomerSnapshot,
    now: i64,
) -> QueryResult<Option<Customer>> {
    super::write_transaction(conn, |conn| {
        apply_customers(
            conn,
            &[(tenant_id, snapshot, now)],
            super::Rule::NewerOrEqual,
        )?;
        customers::table
            .filter(customers::tenant_id.eq(tenant_id))
            .filter(customers::stripe_customer_id.eq(&snapshot.id))
            .select(Customer::as_select())
            .first(conn)
            .optional()
    })
}

/// The one rule for what a non-admin caller owns: the customers they created, and those an
/// admin created for them (`user_unique_id` = their `sub`). Nobody else can put a customer
/// under their id: a non-admin may only name themselves (`customers::create_customer`).
/// Everything else a caller sees (payments, subscriptions, refunds, cards) follows from the
/// customers this admits.
#[diesel::dsl::auto_type]
pub(crate) fn owned_by(subject: String) -> _ {
    let user: String = subject.clone();
    customers::owner_subject
        .eq(subject)
        .or(customers::user_unique_id.eq(user))
}

/// The `cus_` ids of the tenant's customers `subject` owns ([`owned_by`]).
pub(crate) fn owned_customer_ids(
    conn: &mut AnyConnection,
    tenant_id: &str,
    subject: &str,
) -> QueryResult<Vec<String>> {
    customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(owned_by(subject.to_owned()))
        .select(customers::stripe_customer_id)
        .load(conn)
}

type BoxedCustomers<'a> = customers::BoxedQuery<'a, <AnyConnection as Connection>::Backend>;

/// Narrows a query to the customers `visibility` lets the caller see.
fn visible_to<'a>(query: BoxedCustomers<'a>, visibility: &Visibility) -> BoxedCustomers<'a> {
    match visibility {
        Visibility::All => query,
        Visibility::Subject(subject) => query.filter(owned_by(subject.clone())),
    }
}

/// Finds a tenant's customer by any of the id forms clients hold: our unique id, the `cus_` id,
/// or the user unique id it was created for. The first two are unique; for the last the newest
/// customer wins.
pub fn find_by_any_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<Customer>> {
    let query = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::deleted_at.is_null())
        .filter(
            customers::id
                .eq(any_id)
                .or(customers::stripe_customer_id.eq(any_id))
                .or(customers::user_unique_id.eq(any_id)),
        )
        .into_boxed();
    let mut found: Vec<Customer> = visible_to(query, visibility)
        .order(customers::created_at.desc())
        .select(Customer::as_select())
        .load(conn)?;
    // An exact match on one of the unique ids beats a user unique id that happens to equal it.
    let exact = found
        .iter()
        .position(|c| c.id == any_id || c.stripe_customer_id == any_id);
    Ok(match exact {
        Some(index) => Some(found.swap_remove(index)),
        None => found.into_iter().next(),
    })
}

/// The newest live customer with this email that the caller may see.
pub fn find_by_email(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
    visibility: &Visibility,
) -> QueryResult<Option<Customer>> {
    let query = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(customers::email.eq(email))
        .filter(customers::deleted_at.is_null())
        .into_boxed();
    visible_to(query, visibility)
        .order(customers::created_at.desc())
        .select(Customer::as_select())
        .first(conn)
        .optional()
}

// A customer first seen in an event belongs to no caller: only admins see it. A deleted one
// keeps its row, marked deleted (stamped with the time it is written), so a late older
// update cannot bring it back.
super::mirror_table! {
    pub fn apply_customers(customers by stripe_customer_id, s: CustomerSnapshot);
    insert(tenant, now) {
        id: super::new_row_id(),
        tenant_id: tenant,
        stripe_customer_id: &s.id,
        identity_type: "customer",
        owner_subject: "",
        created_at: now,
    }
    state CustomerChangeset<'a> {
        email: Option<&'a str> = s.email.as_deref(),
        name: Option<&'a str> = s.name.as_deref(),
        phone: Option<&'a str> = s.phone.as_deref(),
        description: Option<&'a str> = s.description.as_deref(),
        default_payment_method: Option<&'a str> = s.default_payment_method.as_deref(),
        deleted_at: Option<NaiveDateTime> = s.deleted.then_some(now),
    }
}

/// Where a list cursor stands: the (created_at, id) of the customer `any_id` names (our id or
/// the `cus_` id) among those the caller sees. A deleted one still counts, so a client paging
/// through keeps its place when the last customer it saw is deleted meanwhile.
pub fn list_position(
    conn: &mut AnyConnection,
    tenant_id: &str,
    any_id: &str,
    visibility: &Visibility,
) -> QueryResult<Option<SortKey>> {
    let query = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(
            customers::id
                .eq(any_id)
                .or(customers::stripe_customer_id.eq(any_id)),
        )
        .into_boxed();
    visible_to(query, visibility)
        .select((customers::created_at, customers::id))
        .first(conn)
        .optional()
}

/// A customer's place in the list: (our `created_at`, our id).
pub type SortKey = (NaiveDateTime, String);

/// Up to `limit` of the customers the caller sees (deleted ones left out), newest first, from
/// `start`; and how many there are in all (admins: the tenant's counter).
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    visibility: &Visibility,
    start: &PageStart<SortKey>,
    limit: i64,
) -> QueryResult<Page<Customer>> {
    let build = || {
        let query = customers::table
            .filter(customers::tenant_id.eq(tenant_id.to_owned()))
            .filter(customers::deleted_at.is_null())
            .into_boxed();
        visible_to(query, visibility)
    };
    let counted = match visibility {
        Visibility::All => Total::Counters(Counted {
            tenant_id,
            list: counts::List::Customers,
            buckets: Buckets::Only(&[counts::LIVE]),
        }),
        Visibility::Subject(_) => Total::Narrow,
    };
    super::listing::read_page!(
        conn,
        build,
        customers,
        Customer,
        (created_at: NaiveDateTime, id),
        start,
        limit,
        counted
    )
}
