//! Customer rows: the mirror of the Stripe customers each tenant created.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::customers;

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

#[derive(Debug, Insertable)]
#[diesel(table_name = customers)]
pub struct NewCustomer<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub stripe_customer_id: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub description: Option<&'a str>,
    pub default_payment_method: Option<&'a str>,
    pub metadata: &'a str,
    pub user_unique_id: Option<&'a str>,
    pub identity_type: &'a str,
    pub company_unique_id: Option<&'a str>,
    pub entity_unique_id: Option<&'a str>,
    pub entity_type: Option<&'a str>,
    pub owner_subject: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Who may see which customers of a tenant.
#[derive(Debug, Clone)]
pub enum Visibility {
    /// Admins see everything of the tenant.
    All,
    /// Other callers see the customers created by them or for them, and what belongs to those.
    Subject(String),
}

pub fn insert(conn: &mut AnyConnection, new: &NewCustomer<'_>) -> QueryResult<Customer> {
    diesel::insert_into(customers::table)
        .values(new)
        .execute(conn)?;
    customers::table
        .find(new.id)
        .select(Customer::as_select())
        .first(conn)
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
    let mut query = customers::table
        .filter(customers::tenant_id.eq(tenant_id))
        .filter(
            customers::id
                .eq(any_id)
                .or(customers::stripe_customer_id.eq(any_id))
                .or(customers::user_unique_id.eq(any_id)),
        )
        .into_boxed();
    if let Visibility::Subject(subject) = visibility {
        query = query.filter(
            customers::owner_subject
                .eq(subject.clone())
                .or(customers::user_unique_id.eq(subject.clone())),
        );
    }
    let mut found: Vec<Customer> = query
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
