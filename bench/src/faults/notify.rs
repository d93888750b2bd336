//! Scenario 4: three tenants whose apps fail (a URL that hangs, one that answers 500, one that
//! resets the connection), each with a backlog of notifications, beside two tenants whose apps
//! work and whose webhooks keep coming; the working tenants' notifications arrive on time
//! (within [`ON_TIME`] of the webhook that caused them), every one of them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

use sales_bench::load;
use sales_bench::service::{self, Admin, ServiceEnv};

use crate::Ctx;
use crate::report::Report;
use crate::sink::Sink;
use crate::webhooks::{self, Feed};

pub struct Options {
    /// How long the working tenants' webhooks keep coming.
    pub duration: Duration,
    /// Deliveries of each failing tenant sent at the start (most cause a notification).
    pub backlog: usize,
    /// The working tenants' webhooks, one per tenant every this long.
    pub every: Duration,
}

/// A working tenant's notification arrives within this of its webhook's acknowledgement
/// (the worker polls every second).
const ON_TIME: Duration = Duration::from_secs(5);

#[derive(QueryableByName)]
struct OutboxRow {
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Text)]
    source_event_id: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    attempts: i64,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

fn outbox(database_url: &str) -> anyhow::Result<Vec<OutboxRow>> {
    let mut conn = PgConnection::establish(database_url)
        .with_context(|| format!("connecting to {database_url}"))?;
    Ok(diesel::sql_query(
        "SELECT tenant_id, source_event_id, status, attempts, last_error FROM notification_outbox",
    )
    .load(&mut conn)?)
}

/// Sends `deliveries` one after another, `every` apart, for `duration` at most; returns when
/// each acknowledged one was acknowledged.
async fn paced(
    feed: &Feed,
    every: Duration,
    duration: Duration,
) -> anyhow::Result<HashMap<String, Instant>> {
    let client = crate::api::client(Duration::from_secs(30))?;
    let started = Instant::now();
    let mut acked = HashMap::new();
    let mut tick = tokio::time::interval(every);
    for delivery in feed.deliveries.iter() {
        tick.tick().await;
        if started.elapsed() > duration {
            break;
        }
        let request = load::deliver(&client, &feed.url, &feed.secret, &delivery.body)?;
        if let Ok(response) = request.send().await
            && response.status().is_success()
        {
            acked.insert(delivery.event_id.clone(), Instant::now());
        }
    }
    Ok(acked)
}

pub async fn run(ctx: &Ctx, dir: &Path, options: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("4. notify URLs that hang, answer 500, reset");
    let db = ctx.database().await?;
    let mut env = ServiceEnv::new(ctx.bin.clone(), dir, db.url.clone(), 16);
    // The apps are on loopback over http: the egress policy must let the suite's sink in.
    env.extra_env = vec![
        ("SALES_EGRESS_ALLOW_HTTP".into(), "true".into()),
        ("SALES_EGRESS_ALLOW_LOOPBACK".into(), "true".into()),
        // Failed notifications are due again soon, so the failing apps keep being tried.
        ("SALES_NOTIFY_RETRY_BASE_MS".into(), "2000".into()),
    ];
    let http = crate::api::client(Duration::from_secs(30))?;
    let sink = Sink::start().await?;
    let (emulator, emulator_base) = service::start_emulator(&env).await?;
    let names = ["hang", "fail", "reset", "good-1", "good-2"];
    let mut tenants = Vec::new();
    for name in names {
        tenants.push(env.create_tenant(name, &emulator_base)?);
    }
    let (mut service, base_url) = env.serve(&http).await?;
    let mut feeds = Vec::new();
    for (i, (name, tenant)) in names.iter().zip(&tenants).enumerate() {
        let token = env.token(&tenant.api_key, "notify-admin", true)?;
        let admin = Admin {
            base_url: &base_url,
            api_key: &tenant.api_key,
            token: &token,
        };
        let (url_id, secret) =
            service::create_endpoint(&http, &admin, &["*"], service::NOWHERE).await?;
        let url = match *name {
            "hang" => sink.hang_url.clone(),
            "fail" => sink.fail_url(name),
            "reset" => sink.reset_url.clone(),
            _ => sink.ok_url(name),
        };
        env.set_notify_url(&tenant.api_key, &url)?;
        let events = if name.starts_with("good") {
            (options.duration.as_secs_f64() / options.every.as_secs_f64()) as usize + 50
        } else {
            options.backlog
        };
        let corpus = webhooks::fresh_corpus(events.max(50), 100 + i as u64)?;
        feeds.push(Feed::new(corpus, &base_url, &url_id, &secret, 4)?);
    }
    emulator.stop()?;
    report.figure(format!(
        "tenants hang (a port that accepts and never answers), fail (500), reset (RST after the request) with {} webhooks each at the start; \
         good-1 and good-2 (200) with a webhook every {} ms each for {:.0} s; notify_retry_base_ms=2000, the worker's own settings otherwise",
        options.backlog,
        options.every.as_millis(),
        options.duration.as_secs_f64()
    ));

    for feed in &feeds[..3] {
        let load = feed.send(feed.deliveries.clone(), None).await?;
        anyhow::ensure!(
            load.non_2xx() == 0,
            "a failing tenant's webhooks were not all acknowledged: {:?}",
            load.statuses
        );
    }
    let backlog_sent = Instant::now();
    let (good_1, good_2) = tokio::join!(
        paced(&feeds[3], options.every, options.duration),
        paced(&feeds[4], options.every, options.duration)
    );
    let mut acked = good_1?;
    acked.extend(good_2?);
    let good_ids: Vec<&str> = tenants[3..].iter().map(|t| t.id.as_str()).collect();

    // Wait (a little) for the last ones.
    let deadline = Instant::now() + ON_TIME * 3;
    let rows = loop {
        let url = db.url.clone();
        let rows = tokio::task::spawn_blocking(move || outbox(&url)).await??;
        let waiting = rows
            .iter()
            .filter(|r| good_ids.contains(&r.tenant_id.as_str()) && r.status != "delivered")
            .count();
        if waiting == 0 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let received = sink.received();
    // Each event's first arrival, and at which app.
    let mut first: HashMap<&str, (Instant, &str)> = HashMap::new();
    for r in received.iter().filter(|r| r.ok) {
        let entry = first
            .entry(r.stripe_event_id.as_str())
            .or_insert((r.at, r.name.as_str()));
        if r.at < entry.0 {
            *entry = (r.at, r.name.as_str());
        }
    }
    let name_of: HashMap<&str, &str> = tenants
        .iter()
        .zip(names)
        .map(|(t, n)| (t.id.as_str(), n))
        .collect();
    let good_rows: Vec<&OutboxRow> = rows
        .iter()
        .filter(|r| good_ids.contains(&r.tenant_id.as_str()))
        .collect();
    let mut latency = load::histogram()?;
    let (mut arrived, mut late, mut never, mut elsewhere) = (0, 0, 0, 0);
    for row in &good_rows {
        let (Some((at, app)), Some(ack)) = (
            first.get(row.source_event_id.as_str()),
            acked.get(&row.source_event_id),
        ) else {
            never += 1;
            continue;
        };
        arrived += 1;
        if name_of.get(row.tenant_id.as_str()) != Some(app) {
            elsewhere += 1;
        }
        let took = at.saturating_duration_since(*ack);
        latency.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        if took > ON_TIME {
            late += 1;
        }
    }
    report.figure(format!(
        "working tenants: {} webhooks acknowledged, {} notifications enqueued, {arrived} arrived; from webhook to arrival {}",
        acked.len(),
        good_rows.len(),
        crate::report::quantiles(&latency)
    ));
    let repeated = {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for r in received.iter().filter(|r| r.ok) {
            *count.entry(r.stripe_event_id.as_str()).or_default() += 1;
        }
        count.values().filter(|&&n| n > 1).count()
    };
    report.check(
        "every notification of the working tenants arrives",
        !good_rows.is_empty() && never == 0,
        format!("{never} of {} never arrived", good_rows.len()),
    );
    report.check(
        "each arrives at its own tenant's app",
        elsewhere == 0,
        format!("{elsewhere} at another app"),
    );
    report.check(
        format!("each arrives on time (within {ON_TIME:?} of its webhook)"),
        late == 0 && never == 0,
        format!(
            "{late} late; slowest {:.2} s",
            latency.max() as f64 / 1_000_000.0
        ),
    );
    report.figure(format!(
        "arrived more than once (at-least-once delivery): {repeated}"
    ));
    for (name, tenant) in names.iter().zip(&tenants).take(3) {
        let mine: Vec<&OutboxRow> = rows.iter().filter(|r| r.tenant_id == tenant.id).collect();
        let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &mine {
            *by_status.entry(r.status.as_str()).or_default() += 1;
        }
        let attempts: i64 = mine.iter().map(|r| r.attempts).sum();
        let error = mine
            .iter()
            .find_map(|r| r.last_error.as_deref())
            .unwrap_or("none");
        report.figure(format!(
            "{name}: {} notifications {by_status:?}, {attempts} attempts; last error e.g. {error:?}",
            mine.len()
        ));
        report.check(
            format!("{name}: its notifications were tried and none counts as delivered"),
            !mine.is_empty() && attempts > 0 && !by_status.contains_key("delivered"),
            format!("{by_status:?}, {attempts} attempts"),
        );
    }
    report.figure(format!(
        "the failing apps saw: {} connections held by the hanging port, {} reset, {} answered 500 (over {:.0} s)",
        sink.hung.load(std::sync::atomic::Ordering::Relaxed),
        sink.resets.load(std::sync::atomic::Ordering::Relaxed),
        received.iter().filter(|r| !r.ok).count(),
        backlog_sent.elapsed().as_secs_f64()
    ));
    report.check(
        "the service runs on",
        service.is_running(),
        "after the scenario",
    );
    service.stop()?;
    sink.stop().await;
    crate::drop_database(db).await;
    Ok(report)
}
