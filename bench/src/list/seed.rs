//! The data set: per tenant, `rows` subscriptions and their customers, written with plain
//! `INSERT ... SELECT FROM generate_series` after the service has started (so whatever the
//! service installs at start, triggers or indexes, sees ordinary inserts), then
//! `VACUUM ANALYZE`. Deterministic for a given tenant id: no `random()`.

use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::{Connection, PgConnection, RunQueryDsl};

/// Two years of Stripe `created` seconds, ending at the seed's start.
const SPAN_SECS: i64 = 2 * 365 * 86_400;

/// Customers owned by the non-admin user in each tenant (the first three customer numbers).
pub const OWNED_CUSTOMERS: i64 = 3;

pub struct SeedSpec<'a> {
    pub tenant_id: &'a str,
    pub rows: i64,
    /// The JWT subject of the admin (owner of ordinary customers).
    pub admin: &'a str,
    /// The non-admin user: owns [`OWNED_CUSTOMERS`] customers with a few subscriptions each.
    pub user: &'a str,
    /// Unix seconds the two years end at.
    pub now: i64,
}

/// A literal SQL string (the values are ours; quotes are doubled anyway).
pub fn lit(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Customers: two for every three subscriptions (so some customers have none, most one or
/// two, a few up to ~8). Subscriptions, one in time order per `i`:
/// - `stripe_created` spread evenly over two years, and every 37th equal to the one before
///   (a same-second tie, which `created_at` does not break either: the id does);
/// - statuses 78% active, 8% trialing, 5% past_due, 8% canceled, 1% unpaid (hashed on `i`);
/// - twelve spread over time (every `rows / 12`th) belong to the user's three customers,
///   the others to a hashed customer among the rest.
fn statements(spec: &SeedSpec<'_>) -> [String; 2] {
    let n = spec.rows;
    let customers = (n * 2 / 3).max(OWNED_CUSTOMERS + 1);
    let others = customers - OWNED_CUSTOMERS;
    let step = (n / 12).max(1);
    let start = spec.now - SPAN_SECS;
    let t = lit(spec.tenant_id);
    let tk = spec.tenant_id.replace('\'', "''");
    let (admin, user) = (lit(spec.admin), lit(spec.user));
    let customers_sql = format!(
        "INSERT INTO customers (id, tenant_id, stripe_customer_id, email, name, phone, description, \
         default_payment_method, metadata, user_unique_id, identity_type, company_unique_id, \
         entity_unique_id, entity_type, owner_subject, created_at, updated_at, deleted_at, watermark) \
         SELECT md5('{tk}:customer:' || c)::uuid::text, {t}, \
                'cus_' || substr(md5('{tk}:cus:' || c), 1, 24), \
                'customer' || c || '@example.com', 'Customer ' || c, NULL, NULL, NULL, '{{}}', \
                CASE WHEN c <= {OWNED_CUSTOMERS} THEN {user} ELSE 'user-' || c END, 'user', \
                NULL, NULL, NULL, \
                CASE WHEN c <= {OWNED_CUSTOMERS} THEN {user} ELSE {admin} END, \
                timestamp 'epoch' + ({start} + c::bigint * {SPAN_SECS} / {customers}) * interval '1 second', \
                timestamp 'epoch' + ({start} + c::bigint * {SPAN_SECS} / {customers}) * interval '1 second', \
                NULL, {start} + c::bigint * {SPAN_SECS} / {customers} \
         FROM generate_series(1, {customers}) AS c"
    );
    let subscriptions_sql = format!(
        "INSERT INTO subscriptions (id, tenant_id, stripe_subscription_id, stripe_customer_id, status, \
         current_period_start, current_period_end, trial_end, cancel_at_period_end, canceled_at, \
         price_id, quantity, plan_amount, plan_currency, plan_interval, metadata, stripe_created, \
         created_at, updated_at, watermark) \
         SELECT md5('{tk}:subscription:' || i)::uuid::text, {t}, \
                'sub_' || substr(md5('{tk}:sub:' || i), 1, 24), \
                'cus_' || substr(md5('{tk}:cus:' || customer), 1, 24), \
                status, \
                timestamp 'epoch' + ({now} - i % 2592000) * interval '1 second', \
                timestamp 'epoch' + ({now} - i % 2592000 + 2592000) * interval '1 second', \
                CASE WHEN status = 'trialing' THEN timestamp 'epoch' + (created + 1209600) * interval '1 second' END, \
                status = 'active' AND i % 20 = 0, \
                CASE WHEN status = 'canceled' THEN timestamp 'epoch' + (created + 86400 + i % 5000000) * interval '1 second' END, \
                'price_bench' || (i % 4), 1 + (i % 7 = 0)::int * 4, \
                (ARRAY[900, 1900, 4900, 9900])[1 + i % 4]::bigint, 'usd', \
                CASE WHEN i % 4 = 3 THEN 'year' ELSE 'month' END, \
                '{{\"order_id\":\"ord_' || i || '\"}}', \
                created, \
                timestamp 'epoch' + (created + 2) * interval '1 second', \
                timestamp 'epoch' + (created + 2 + i % 1000) * interval '1 second', \
                created + i % 1000 \
         FROM (SELECT i, \
                      CASE WHEN i % {step} = 0 THEN 1 + (i / {step}) % {OWNED_CUSTOMERS} \
                           ELSE {OWNED_CUSTOMERS} + 1 + abs(hashint4extended(i, 2) % {others}) END AS customer, \
                      CASE WHEN abs(hashint4extended(i, 1) % 100) < 78 THEN 'active' \
                           WHEN abs(hashint4extended(i, 1) % 100) < 86 THEN 'trialing' \
                           WHEN abs(hashint4extended(i, 1) % 100) < 91 THEN 'past_due' \
                           WHEN abs(hashint4extended(i, 1) % 100) < 99 THEN 'canceled' \
                           ELSE 'unpaid' END AS status, \
                      {start} + (i - (i % 37 = 0)::int)::bigint * {SPAN_SECS} / {n} AS created \
               FROM generate_series(1, {n}) AS i) AS s",
        now = spec.now,
    );
    [customers_sql, subscriptions_sql]
}

/// How long seeding took.
pub struct SeedTimes {
    pub insert: Duration,
    pub vacuum: Duration,
}

/// Seeds every tenant (in order), then `VACUUM ANALYZE` of the database.
pub fn seed(database_url: &str, specs: &[SeedSpec<'_>]) -> anyhow::Result<SeedTimes> {
    let mut conn = PgConnection::establish(database_url)
        .with_context(|| format!("connecting to {database_url}"))?;
    let started = Instant::now();
    for spec in specs {
        for sql in statements(spec) {
            diesel::sql_query(&sql)
                .execute(&mut conn)
                .with_context(|| format!("seeding tenant {}", spec.tenant_id))?;
        }
    }
    let insert = started.elapsed();
    let started = Instant::now();
    // What autovacuum would have done by the time a real table had grown this large: the
    // visibility map (index-only scans) and the planner's statistics.
    diesel::sql_query("VACUUM ANALYZE")
        .execute(&mut conn)
        .context("VACUUM ANALYZE")?;
    Ok(SeedTimes {
        insert,
        vacuum: started.elapsed(),
    })
}
