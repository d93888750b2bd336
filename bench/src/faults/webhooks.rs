//! What scenarios 1 and 2 share: the receiver's signed corpus delivered to one endpoint under
//! a fault, Stripe's retries of every delivery not acknowledged, and the checks that nothing
//! acknowledged was lost (the stored events and the mirror) and that the mirror ends right.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::Context;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

use sales_bench::corpus::{self, Corpus, Delivery};
use sales_bench::load::{self, LoadResult};
use sales_bench::verify::{self, Verdict};

use crate::report::Report;

/// A sender that meets an unanswered delivery waits this long before its next one.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_millis(200);
/// Stripe's retries: rounds, the first after [`FIRST_RETRY`], each wait twice the last.
const RETRY_ROUNDS: usize = 8;
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// The corpus and the endpoint it goes to.
pub struct Feed {
    pub corpus: Arc<Corpus>,
    pub deliveries: Arc<Vec<Delivery>>,
    pub url: String,
    pub secret: String,
    pub connections: usize,
    client: reqwest::Client,
}

/// A fresh corpus (every delivery a new event, 3% of pairs of one object delivered newest
/// first): what `receiver-load --fresh` sends.
pub fn fresh_corpus(events: usize, seed: u64) -> anyhow::Result<Corpus> {
    corpus::generate(&corpus::Options {
        events,
        seed,
        duplicate_rate: 0.0,
        reversed_rate: 0.03,
    })
}

/// Stripe's retries of the deliveries left unacknowledged.
pub struct Retries {
    pub rounds: usize,
    pub sent: usize,
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    /// Still not acknowledged after the last round.
    pub left: usize,
}

impl Feed {
    pub fn new(
        corpus: Corpus,
        base_url: &str,
        url_id: &str,
        secret: &str,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the load client")?;
        Ok(Self {
            deliveries: Arc::new(corpus.deliveries.clone()),
            corpus: Arc::new(corpus),
            url: format!("{base_url}/stripe/{url_id}/webhook"),
            secret: secret.to_owned(),
            connections,
            client,
        })
    }

    /// Sends `deliveries` (the corpus's, or some of them again) at the feed's connections; a
    /// worker that is not answered 2xx pauses before its next delivery. `acknowledged` counts
    /// the 2xx answers as they come.
    pub async fn send(
        &self,
        deliveries: Arc<Vec<Delivery>>,
        acknowledged: Option<Arc<AtomicUsize>>,
    ) -> anyhow::Result<LoadResult> {
        let options = load::Options {
            acknowledged,
            pause_after_failure: PAUSE_AFTER_FAILURE,
            ..load::Options::new(self.connections, Duration::from_secs(900))
        };
        load::run_with(
            self.client.clone(),
            self.url.clone(),
            self.secret.clone(),
            deliveries,
            &options,
        )
        .await
    }

    /// Stripe's retries: the deliveries at `unacked` (indices into the corpus) sent again,
    /// round after round with a doubling wait, until each is acknowledged.
    pub async fn retry(&self, mut unacked: Vec<usize>) -> anyhow::Result<Retries> {
        let mut retries = Retries {
            rounds: 0,
            sent: 0,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            left: unacked.len(),
        };
        let mut wait = FIRST_RETRY;
        while !unacked.is_empty() && retries.rounds < RETRY_ROUNDS {
            tokio::time::sleep(wait).await;
            wait *= 2;
            retries.rounds += 1;
            let again: Vec<Delivery> = unacked
                .iter()
                .map(|&i| self.deliveries[i].clone())
                .collect();
            let result = self.send(Arc::new(again), None).await?;
            retries.sent += result.sent;
            for (status, n) in &result.statuses {
                *retries.statuses.entry(*status).or_default() += n;
            }
            retries.transport_errors += result.transport_errors;
            unacked = result
                .unacknowledged(unacked.len())
                .into_iter()
                .map(|j| unacked[j])
                .collect();
            retries.left = unacked.len();
        }
        Ok(retries)
    }
}

/// `statuses {200: n, 503: m}, transport errors k`.
pub fn answers(statuses: &BTreeMap<u16, u64>, transport_errors: u64) -> String {
    format!("statuses {statuses:?}, transport errors {transport_errors}")
}

#[derive(QueryableByName)]
struct EventId {
    #[diesel(sql_type = Text)]
    event_id: String,
}

#[derive(QueryableByName)]
struct Watermark {
    #[diesel(sql_type = Text)]
    object_id: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    watermark: Option<i64>,
}

/// The acknowledged events as the database holds them.
pub struct Acknowledged {
    pub events: usize,
    /// Of them, stored in `stripe_events`.
    pub stored: usize,
    /// Of them, events of a mirrored object (subscription, payment, checkout, customer).
    pub mirrored: usize,
    /// Of those, the ones whose object's row holds state at least as new as the event (the
    /// receiver's watermark rule: a row never goes back to older state).
    pub row_as_new: usize,
    /// A few that are not, described.
    pub missing: Vec<String>,
}

/// The mirror table and key column of an object id.
fn table_of(object_id: &str) -> Option<(&'static str, &'static str)> {
    match object_id.split('_').next()? {
        "sub" => Some(("subscriptions", "stripe_subscription_id")),
        "pi" => Some(("payments", "stripe_payment_intent_id")),
        "cs" => Some(("checkout_sessions", "stripe_session_id")),
        "cus" => Some(("customers", "stripe_customer_id")),
        _ => None,
    }
}

/// Whether every event in `acked` (event ids acknowledged by the service) is stored, and
/// whether the mirror holds each one's state or a newer one.
pub fn check_acknowledged(
    database_url: &str,
    corpus: &Corpus,
    acked: &[String],
) -> anyhow::Result<Acknowledged> {
    let mut conn = PgConnection::establish(database_url)
        .with_context(|| format!("connecting to {database_url}"))?;
    let stored: HashSet<String> = diesel::sql_query("SELECT event_id FROM stripe_events")
        .load::<EventId>(&mut conn)
        .context("reading stripe_events")?
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    let mut watermarks: HashMap<String, Option<i64>> = HashMap::new();
    for (table, key) in [
        ("subscriptions", "stripe_subscription_id"),
        ("payments", "stripe_payment_intent_id"),
        ("checkout_sessions", "stripe_session_id"),
        ("customers", "stripe_customer_id"),
    ] {
        let rows: Vec<Watermark> =
            diesel::sql_query(format!("SELECT {key} AS object_id, watermark FROM {table}"))
                .load(&mut conn)
                .with_context(|| format!("reading {table}"))?;
        watermarks.extend(rows.into_iter().map(|r| (r.object_id, r.watermark)));
    }
    // Event id -> (object id, created), from the corpus.
    let events: HashMap<&str, (&str, i64)> = corpus
        .history
        .iter()
        .flat_map(|(object, entries)| {
            entries
                .iter()
                .map(move |e| (e.event_id.as_str(), (object.as_str(), e.created)))
        })
        .collect();
    let mut found = Acknowledged {
        events: acked.len(),
        stored: 0,
        mirrored: 0,
        row_as_new: 0,
        missing: Vec::new(),
    };
    for id in acked {
        if stored.contains(id) {
            found.stored += 1;
        } else if found.missing.len() < 10 {
            found
                .missing
                .push(format!("{id}: acknowledged, not in stripe_events"));
        }
        let Some(&(object, created)) = events.get(id.as_str()) else {
            continue;
        };
        let Some((table, _)) = table_of(object) else {
            continue;
        };
        found.mirrored += 1;
        match watermarks.get(object) {
            Some(Some(w)) if *w >= created => found.row_as_new += 1,
            other => {
                if found.missing.len() < 10 {
                    found.missing.push(format!(
                        "{id} ({object}, created {created}): {table} holds {other:?}"
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// The checks of an acknowledged set.
pub fn report_acknowledged(report: &mut Report, when: &str, a: &Acknowledged) {
    report.check(
        format!("every event acknowledged {when} is stored"),
        a.stored == a.events,
        format!("{} of {} in stripe_events", a.stored, a.events),
    );
    report.check(
        format!("the mirror holds every mirrored event acknowledged {when} (or newer state)"),
        a.row_as_new == a.mirrored,
        format!("{} of {} rows at least as new", a.row_as_new, a.mirrored),
    );
    for line in &a.missing {
        report.figure(format!("missing: {line}"));
    }
}

/// The final check of the mirror against the corpus (as `receiver-load` does).
pub async fn verify_mirror(
    report: &mut Report,
    database_url: &str,
    corpus: &Arc<Corpus>,
) -> anyhow::Result<Verdict> {
    let (url, corpus) = (database_url.to_owned(), corpus.clone());
    let v = tokio::task::spawn_blocking(move || verify::verify(&url, &corpus)).await??;
    report.figure(format!(
        "mirror: {} rows checked; stripe_events: {} rows; outcomes {:?}",
        v.rows_checked, v.events_stored, v.outcomes
    ));
    report.check(
        "every event of the corpus is stored, once, and no other",
        v.events_missing == 0 && v.events_unknown == 0 && v.events_stored_twice == 0,
        format!(
            "{} missing, {} unknown, {} stored twice",
            v.events_missing, v.events_unknown, v.events_stored_twice
        ),
    );
    report.check(
        "every mirror row holds its object's final state (newest `created`), no extra rows",
        v.wrong_rows == 0,
        format!("{} wrong of {}", v.wrong_rows, v.rows_checked),
    );
    for wrong in &v.wrong {
        report.figure(format!(
            "wrong row: {} {}: expected {}, found {}",
            wrong.table, wrong.object_id, wrong.expected, wrong.actual
        ));
    }
    Ok(v)
}
