//! A tenant's policy row: what its end users may choose that moves money.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::AnyConnection;
use super::schema::tenant_policies;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tenant_policies, treat_none_as_null = true)]
pub struct PolicyRow {
    pub tenant_id: String,
    /// JSON array of choice names.
    pub allow: String,
    /// JSON array of coupon ids.
    pub offered_coupons: String,
    pub order_lookup_url: Option<String>,
    pub order_lookup_secret_enc: Option<String>,
    pub updated_at: NaiveDateTime,
}

pub fn find(conn: &mut AnyConnection, tenant_id: &str) -> QueryResult<Option<PolicyRow>> {
    tenant_policies::table
        .find(tenant_id)
        .select(PolicyRow::as_select())
        .first(conn)
        .optional()
}

/// Writes the whole row (an update, or the first insert).
pub fn save(conn: &mut AnyConnection, row: &PolicyRow) -> QueryResult<()> {
    super::write_transaction(conn, |conn| {
        let updated = diesel::update(tenant_policies::table.find(&row.tenant_id))
            .set(row)
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(tenant_policies::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Every stored order lookup secret, by tenant (for `rotate-master-key`).
pub fn sealed_secrets(conn: &mut AnyConnection) -> QueryResult<Vec<(String, String)>> {
    tenant_policies::table
        .filter(tenant_policies::order_lookup_secret_enc.is_not_null())
        .select((
            tenant_policies::tenant_id,
            tenant_policies::order_lookup_secret_enc.assume_not_null(),
        ))
        .load(conn)
}

pub fn reseal_secret(conn: &mut AnyConnection, tenant_id: &str, sealed: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(tenant_policies::table.find(tenant_id))
            .set(tenant_policies::order_lookup_secret_enc.eq(Some(sealed)))
            .execute(conn)
    })
    .map(|_| ())
}
