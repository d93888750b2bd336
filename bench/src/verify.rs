//! After a level: the mirror, read straight from PostgreSQL, against the corpus's final states;
//! and `stripe_events` against the corpus's distinct event ids.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use anyhow::Context;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

use crate::corpus::{CheckoutState, Corpus, CustomerState, PaymentState, SubscriptionState};

#[derive(QueryableByName)]
struct SubscriptionRow {
    #[diesel(sql_type = Text)]
    object_id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    plan_amount: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    price_id: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    quantity: Option<i64>,
    #[diesel(sql_type = Bool)]
    cancel_at_period_end: bool,
}

#[derive(QueryableByName)]
struct PaymentRow {
    #[diesel(sql_type = Text)]
    object_id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
}

#[derive(QueryableByName)]
struct CheckoutRow {
    #[diesel(sql_type = Text)]
    object_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
    #[diesel(sql_type = Text)]
    payment_status: String,
}

#[derive(QueryableByName)]
struct CustomerRow {
    #[diesel(sql_type = Text)]
    object_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
pub struct StoredEvent {
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = BigInt)]
    pub stripe_created: i64,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Text)]
    pub received_at: String,
}

#[derive(Debug)]
pub struct WrongRow {
    pub table: &'static str,
    pub object_id: String,
    pub expected: String,
    pub actual: String,
    /// The object's events as stored, in order of receipt.
    pub stored: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Verdict {
    pub rows_checked: usize,
    pub wrong: Vec<WrongRow>,
    /// Total number of wrong rows (missing, different, or not in the corpus).
    pub wrong_rows: usize,
    pub events_stored: i64,
    pub events_missing: usize,
    pub events_unknown: usize,
    pub events_stored_twice: usize,
    pub outcomes: BTreeMap<String, i64>,
}

/// Wrong rows described in full (the rest are only counted).
const DESCRIBED: usize = 10;

fn compare<E: Debug + PartialEq, A>(
    verdict: &mut Verdict,
    table: &'static str,
    expected: &BTreeMap<String, E>,
    actual: Vec<A>,
    split: impl Fn(A) -> (String, E),
) {
    let mut actual: HashMap<String, E> = actual.into_iter().map(split).collect();
    for (id, want) in expected {
        verdict.rows_checked += 1;
        let found = actual.remove(id);
        if found.as_ref() != Some(want) {
            verdict.wrong_rows += 1;
            verdict.wrong.push(WrongRow {
                table,
                object_id: id.clone(),
                expected: format!("{want:?}"),
                actual: found.map_or_else(|| "no row".to_owned(), |f| format!("{f:?}")),
                stored: Vec::new(),
            });
        }
    }
    for (id, found) in actual {
        verdict.wrong_rows += 1;
        verdict.wrong.push(WrongRow {
            table,
            object_id: id,
            expected: "no row (not in the corpus)".to_owned(),
            actual: format!("{found:?}"),
            stored: Vec::new(),
        });
    }
}

pub fn verify(database_url: &str, corpus: &Corpus) -> anyhow::Result<Verdict> {
    let mut conn = PgConnection::establish(database_url)
        .with_context(|| format!("connecting to {database_url}"))?;
    let mut verdict = Verdict::default();

    let rows: Vec<SubscriptionRow> = diesel::sql_query(
        "SELECT stripe_subscription_id AS object_id, status, plan_amount, price_id, quantity, \
         cancel_at_period_end FROM subscriptions",
    )
    .load(&mut conn)
    .context("reading subscriptions")?;
    compare(
        &mut verdict,
        "subscriptions",
        &corpus.subscriptions,
        rows,
        |r| {
            (
                r.object_id,
                SubscriptionState {
                    status: r.status,
                    plan_amount: r.plan_amount.unwrap_or(-1),
                    price_id: r.price_id.unwrap_or_default(),
                    quantity: r.quantity.unwrap_or(-1),
                    cancel_at_period_end: r.cancel_at_period_end,
                },
            )
        },
    );
    let rows: Vec<PaymentRow> = diesel::sql_query(
        "SELECT stripe_payment_intent_id AS object_id, status, amount FROM payments",
    )
    .load(&mut conn)
    .context("reading payments")?;
    compare(&mut verdict, "payments", &corpus.payments, rows, |r| {
        (
            r.object_id,
            PaymentState {
                status: r.status,
                amount: r.amount,
            },
        )
    });
    let rows: Vec<CheckoutRow> = diesel::sql_query(
        "SELECT stripe_session_id AS object_id, status, payment_status FROM checkout_sessions",
    )
    .load(&mut conn)
    .context("reading checkout_sessions")?;
    compare(
        &mut verdict,
        "checkout_sessions",
        &corpus.checkouts,
        rows,
        |r| {
            (
                r.object_id,
                CheckoutState {
                    status: r.status.unwrap_or_default(),
                    payment_status: r.payment_status,
                },
            )
        },
    );
    let rows: Vec<CustomerRow> = diesel::sql_query(
        "SELECT stripe_customer_id AS object_id, email FROM customers WHERE deleted_at IS NULL",
    )
    .load(&mut conn)
    .context("reading customers")?;
    compare(&mut verdict, "customers", &corpus.customers, rows, |r| {
        (
            r.object_id,
            CustomerState {
                email: r.email.unwrap_or_default(),
            },
        )
    });

    // One stored event per distinct event id, none missing, none invented.
    let stored: Vec<Counted> = diesel::sql_query(
        "SELECT event_id AS key, count(*) AS n FROM stripe_events GROUP BY event_id",
    )
    .load(&mut conn)
    .context("reading stripe_events")?;
    let mut seen = 0;
    for row in &stored {
        verdict.events_stored += row.n;
        if corpus.event_ids.contains(&row.key) {
            seen += 1;
        } else {
            verdict.events_unknown += 1;
        }
        if row.n > 1 {
            verdict.events_stored_twice += 1;
        }
    }
    verdict.events_missing = corpus.event_ids.len() - seen;
    let outcomes: Vec<Counted> = diesel::sql_query(
        "SELECT outcome AS key, count(*) AS n FROM stripe_events GROUP BY outcome",
    )
    .load(&mut conn)
    .context("reading stripe_events outcomes")?;
    verdict.outcomes = outcomes.into_iter().map(|c| (c.key, c.n)).collect();

    // The stored history of the first few wrong objects, to explain them.
    verdict
        .wrong
        .sort_by(|a, b| (a.table, &a.object_id).cmp(&(b.table, &b.object_id)));
    verdict.wrong.truncate(DESCRIBED);
    for wrong in &mut verdict.wrong {
        let events: Vec<StoredEvent> = diesel::sql_query(
            "SELECT event_id, event_type, stripe_created, outcome, received_at::text AS received_at \
             FROM stripe_events WHERE object_id = $1 ORDER BY received_at",
        )
        .bind::<Text, _>(&wrong.object_id)
        .load(&mut conn)
        .context("reading a wrong object's events")?;
        wrong.stored = events
            .into_iter()
            .map(|e| {
                format!(
                    "{} {} created={} outcome={} received_at={}",
                    e.event_id, e.event_type, e.stripe_created, e.outcome, e.received_at
                )
            })
            .collect();
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_different_and_extra_rows_are_all_wrong() {
        let expected: BTreeMap<String, CustomerState> =
            [("cus_a", "a@x"), ("cus_b", "b@x"), ("cus_c", "c@x")]
                .into_iter()
                .map(|(id, email)| {
                    (
                        id.to_owned(),
                        CustomerState {
                            email: email.to_owned(),
                        },
                    )
                })
                .collect();
        let actual = vec![("cus_a", "a@x"), ("cus_b", "old@x"), ("cus_z", "z@x")];
        let mut verdict = Verdict::default();
        compare(
            &mut verdict,
            "customers",
            &expected,
            actual,
            |(id, email)| {
                (
                    id.to_owned(),
                    CustomerState {
                        email: email.to_owned(),
                    },
                )
            },
        );
        assert_eq!(verdict.rows_checked, 3);
        assert_eq!(verdict.wrong_rows, 3);
        let mut wrong: Vec<(&str, &str)> = verdict
            .wrong
            .iter()
            .map(|w| (w.object_id.as_str(), w.actual.as_str()))
            .collect();
        wrong.sort_unstable();
        assert_eq!(
            wrong,
            vec![
                ("cus_b", "CustomerState { email: \"old@x\" }"),
                ("cus_c", "no row"),
                ("cus_z", "CustomerState { email: \"z@x\" }"),
            ]
        );
    }
}
