//! The measured requests and, for each, the truth from the database: the true total, the
//! page's rows, and the best single raw SQL statement returning that page (read from the
//! newest end or from the oldest end, whichever the database answers faster).

use std::time::Instant;

use anyhow::{Context, bail};
use diesel::{PgConnection, QueryableByName, RunQueryDsl, sql_types};

use crate::seed::lit;

pub const PER_PAGE: i64 = 20;

/// The columns the service reads for a list (`SubscriptionRow`).
const COLUMNS: &str = "id, tenant_id, stripe_subscription_id, stripe_customer_id, status, \
    current_period_start, current_period_end, trial_end, cancel_at_period_end, canceled_at, \
    price_id, quantity, plan_amount, plan_currency, plan_interval, metadata, stripe_created, \
    created_at, updated_at, watermark";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Admin,
    User,
}

/// One request shape, before the database is asked.
pub struct CaseSpec {
    pub name: String,
    pub caller: Caller,
    /// `status=active`, `customer_id=cus_...` or empty.
    pub filter_query: String,
    /// The same filter as SQL conditions after the tenant's (`AND ...`), or empty.
    pub filter_sql: String,
    pub page: PageChoice,
}

#[derive(Debug, Clone, Copy)]
pub enum PageChoice {
    Number(i64),
    Middle,
    Last,
}

/// Which end the raw statement reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `ORDER BY ... DESC LIMIT 20 OFFSET k`, the service's order.
    Newest,
    /// `ORDER BY ... ASC LIMIT n OFFSET total - k - n`: the same rows, reversed.
    Oldest,
}

impl Form {
    pub fn label(self) -> &'static str {
        match self {
            Form::Newest => "newest-first",
            Form::Oldest => "oldest-first",
        }
    }
}

/// A case ready to run.
pub struct Case {
    pub name: String,
    pub caller: Caller,
    /// The query string of `GET /stripe/subscriptions`.
    pub query: String,
    pub page: i64,
    pub total: i64,
    /// Our ids of the page's rows, in the service's order.
    pub expected_ids: Vec<String>,
    /// The raw statement run by pgbench, and its form.
    pub raw_sql: String,
    pub form: Form,
    /// Median milliseconds of each form, one connection, warm (newest, oldest).
    pub form_ms: (f64, f64),
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = sql_types::Text)]
    id: String,
}

#[derive(QueryableByName)]
struct CustomerRow {
    #[diesel(sql_type = sql_types::Text)]
    stripe_customer_id: String,
}

/// The measured tenant's customer with the most subscriptions (ties: the smallest id).
pub fn busiest_customer(conn: &mut PgConnection, tenant_id: &str) -> anyhow::Result<String> {
    let row: CustomerRow = diesel::sql_query(format!(
        "SELECT stripe_customer_id FROM subscriptions WHERE tenant_id = {} \
         GROUP BY stripe_customer_id ORDER BY count(*) DESC, stripe_customer_id LIMIT 1",
        lit(tenant_id)
    ))
    .get_result(conn)
    .context("finding the customer with the most subscriptions")?;
    Ok(row.stripe_customer_id)
}

/// The cases of the issue: pages 1, 100, middle and last, unfiltered and `status=active`;
/// page 1 of one customer; page 1 of the non-admin user.
pub fn specs(customer: &str) -> Vec<CaseSpec> {
    let mut out = Vec::new();
    let pages = [
        ("1", PageChoice::Number(1)),
        ("100", PageChoice::Number(100)),
        ("middle", PageChoice::Middle),
        ("last", PageChoice::Last),
    ];
    for (filter_name, filter_query, filter_sql) in [
        ("all", String::new(), String::new()),
        (
            "active",
            "status=active".to_owned(),
            "AND status = 'active'".to_owned(),
        ),
    ] {
        for (label, page) in pages {
            out.push(CaseSpec {
                name: format!("{filter_name} page {label}"),
                caller: Caller::Admin,
                filter_query: filter_query.clone(),
                filter_sql: filter_sql.clone(),
                page,
            });
        }
    }
    out.push(CaseSpec {
        name: "customer page 1".to_owned(),
        caller: Caller::Admin,
        filter_query: format!("customer_id={customer}"),
        filter_sql: format!("AND stripe_customer_id = {}", lit(customer)),
        page: PageChoice::Number(1),
    });
    out.push(CaseSpec {
        name: "user page 1".to_owned(),
        caller: Caller::User,
        filter_query: String::new(),
        filter_sql: String::new(),
        page: PageChoice::Number(1),
    });
    out
}

/// Pages of `PER_PAGE` rows for `total` rows.
pub fn page_count(total: i64) -> i64 {
    (total + PER_PAGE - 1) / PER_PAGE
}

fn where_clause(tenant_id: &str, user: &str, spec: &CaseSpec) -> String {
    let t = lit(tenant_id);
    let visible = match spec.caller {
        Caller::Admin => String::new(),
        // The service's rule (db::customers::owned_by): the customers the subject created or
        // stands for.
        Caller::User => format!(
            " AND stripe_customer_id IN (SELECT stripe_customer_id FROM customers \
             WHERE tenant_id = {t} AND (owner_subject = {u} OR user_unique_id = {u}))",
            u = lit(user)
        ),
    };
    format!("tenant_id = {t}{visible} {}", spec.filter_sql)
        .trim_end()
        .to_owned()
}

fn statement(filter: &str, form: Form, page: i64, total: i64) -> String {
    let skip = (page - 1) * PER_PAGE;
    let (order, limit, offset) = match form {
        Form::Newest => ("DESC", PER_PAGE, skip),
        Form::Oldest => {
            let n = PER_PAGE.min(total - skip).max(0);
            ("ASC", n, (total - skip - n).max(0))
        }
    };
    format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE {filter} \
         ORDER BY stripe_created {order}, created_at {order}, id {order} LIMIT {limit} OFFSET {offset}"
    )
}

fn ids(conn: &mut PgConnection, sql: &str) -> anyhow::Result<Vec<String>> {
    let rows: Vec<IdRow> = diesel::sql_query(format!("SELECT id FROM ({sql}) AS page"))
        .load(conn)
        .with_context(|| format!("running {sql}"))?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Median wall time of `sql` in milliseconds over 9 runs after 2 warm-up runs.
fn median_ms(conn: &mut PgConnection, sql: &str) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for run in 0..11 {
        let started = Instant::now();
        diesel::sql_query(sql)
            .execute(conn)
            .with_context(|| format!("running {sql}"))?;
        if run >= 2 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Resolves a spec against the database: the true total, the page, the rows, the raw form.
pub fn prepare(
    conn: &mut PgConnection,
    tenant_id: &str,
    user: &str,
    spec: &CaseSpec,
) -> anyhow::Result<Case> {
    let filter = where_clause(tenant_id, user, spec);
    let total = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM subscriptions WHERE {filter}"
    ))
    .get_result::<Count>(conn)
    .with_context(|| format!("counting {}", spec.name))?
    .n;
    let pages = page_count(total).max(1);
    let page = match spec.page {
        PageChoice::Number(n) => n.min(pages),
        PageChoice::Middle => (pages + 1) / 2,
        PageChoice::Last => pages,
    };
    let newest = statement(&filter, Form::Newest, page, total);
    let oldest = statement(&filter, Form::Oldest, page, total);
    let expected_ids = ids(conn, &newest)?;
    let mut reversed = ids(conn, &oldest)?;
    reversed.reverse();
    if reversed != expected_ids {
        bail!(
            "{}: the oldest-first statement does not return the page's rows:\n  {newest}\n  {oldest}",
            spec.name
        );
    }
    let form_ms = (median_ms(conn, &newest)?, median_ms(conn, &oldest)?);
    let (form, raw_sql) = if form_ms.1 < form_ms.0 {
        (Form::Oldest, oldest)
    } else {
        (Form::Newest, newest)
    };
    let mut query = format!("page={page}&records={PER_PAGE}");
    if !spec.filter_query.is_empty() {
        query.push('&');
        query.push_str(&spec.filter_query);
    }
    Ok(Case {
        name: spec.name.clone(),
        caller: spec.caller,
        query,
        page,
        total,
        expected_ids,
        raw_sql,
        form,
        form_ms,
    })
}
