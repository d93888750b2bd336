//! Scenario 2: PostgreSQL (the suite's own cluster) stopped like a crash (`pg_ctl stop -m
//! immediate`) in the middle of a webhook load with API reads going on, and started again a few
//! seconds later; the service is not restarted. While the database is down every answer is a
//! non-2xx (503 with `Retry-After`, as a JSON:API error on the API) and comes within the
//! deadlines; once it is back the same process answers 2xx again; with Stripe's retries of the
//! unanswered deliveries nothing is lost.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sales_bench::load::Outcome;
use sales_bench::service::{self, ServiceEnv};

use crate::Ctx;
use crate::api::{self, Answer, Caller};
use crate::report::{Report, quantiles};
use crate::webhooks::{self, Feed, answers};

pub struct Options {
    pub events: usize,
    pub connections: usize,
    pub seed: u64,
    /// The stop comes when this share of the corpus has been acknowledged.
    pub stop_at: f64,
    /// How long the database stays down.
    pub down: Duration,
}

/// No answer while the database is down may take longer than this: the connect timeout (5 s by
/// default) and the pool's wait (5 s) bound every request.
const NO_HANG: Duration = Duration::from_secs(12);
/// The service answers 2xx again this soon after the database accepts connections.
const RECOVERY: Duration = Duration::from_secs(10);

pub async fn run(ctx: &Ctx, dir: &Path, options: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("2. PostgreSQL restarted during load");
    let db = ctx.database().await?;
    let env = ServiceEnv::new(ctx.bin.clone(), dir, db.url.clone(), 16);
    let http = api::client(Duration::from_secs(60))?;
    let mut running = service::start(&env, &http).await?;
    let pid = running.service.pid();
    let caller = Caller {
        base_url: running.base_url.clone(),
        api_key: running.api_key.clone(),
        token: running.token.clone(),
        http: http.clone(),
    };
    let corpus = webhooks::fresh_corpus(options.events, options.seed)?;
    let feed = Feed::new(
        corpus,
        &running.base_url,
        &running.url_id,
        &running.signing_secret,
        options.connections,
    )?;
    let total = feed.deliveries.len();
    report.figure(format!(
        "corpus: {total} fresh deliveries at {} connections, API reads (two callers of GET /stripe/customers) and GET /ready, each every 100 ms at most; \
         stop (-m immediate) after {:.0}% acknowledged, {:.0} s down",
        options.connections,
        options.stop_at * 100.0,
        options.down.as_secs_f64()
    ));

    let epoch = Instant::now();
    let stop_probes = Arc::new(AtomicBool::new(false));
    let every = Duration::from_millis(100);
    // Two readers, so that some reads fall inside the outage whatever their latency.
    let reads: Vec<_> = (0..2)
        .map(|_| {
            api::probe(
                caller.clone(),
                "/stripe/customers",
                None,
                every,
                epoch,
                stop_probes.clone(),
            )
        })
        .collect();
    let ready = api::probe(
        caller.clone(),
        "/ready",
        None,
        every,
        epoch,
        stop_probes.clone(),
    );
    let acked = Arc::new(AtomicUsize::new(0));
    let load = feed.send(feed.deliveries.clone(), Some(acked.clone()));
    let fault = async {
        let threshold = (total as f64 * options.stop_at) as usize;
        while acked.load(Ordering::Relaxed) < threshold {
            anyhow::ensure!(
                epoch.elapsed() < Duration::from_secs(600),
                "the load did not reach the stop point within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let cluster = ctx.cluster.clone();
        let stopping = epoch.elapsed();
        tokio::task::spawn_blocking(move || cluster.stop("immediate")).await??;
        let down_at = epoch.elapsed();
        tokio::time::sleep(options.down).await;
        let starting = epoch.elapsed();
        let cluster = ctx.cluster.clone();
        tokio::task::spawn_blocking(move || cluster.start_no_wait()).await??;
        // The last moment it was seen refusing, and the first it took a connection (crash
        // recovery runs in between).
        let mut refused_at = starting;
        loop {
            let cluster = ctx.cluster.clone();
            let took = tokio::task::spawn_blocking(move || cluster.accepts()).await?;
            if took {
                break;
            }
            refused_at = epoch.elapsed();
            anyhow::ensure!(
                refused_at < starting + Duration::from_secs(120),
                "PostgreSQL did not take connections within 2 minutes of its start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let up_at = epoch.elapsed();
        anyhow::Ok((stopping, down_at, starting, refused_at, up_at))
    };
    let (load, fault) = tokio::join!(load, fault);
    let (load, (stopping, down_at, starting, refused_at, up_at)) = (load?, fault?);
    // Two more seconds of reads after the load.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_probes.store(true, Ordering::Relaxed);
    let mut all_reads = Vec::new();
    for probe in reads {
        all_reads.extend(probe.await?);
    }
    let (reads, ready) = (all_reads, ready.await?);
    // The timeline, for a closer look.
    let hooks: Vec<Answer> = load
        .outcomes
        .iter()
        .map(|o| Answer {
            status: o.status,
            latency: o.latency,
            at: o.sent_at,
            jsonapi_error: false,
            code: None,
        })
        .collect();
    api::write_timeline(
        &dir.join("timeline.csv"),
        &[("read", &reads), ("ready", &ready), ("webhook", &hooks)],
    )?;
    report.figure(format!(
        "PostgreSQL: stop began at {:.2} s, gone at {:.2} s, start began at {:.2} s, refusing connections until {:.2} s (crash recovery), taking them at {:.2} s",
        stopping.as_secs_f64(),
        down_at.as_secs_f64(),
        starting.as_secs_f64(),
        refused_at.as_secs_f64(),
        up_at.as_secs_f64()
    ));
    report.figure(format!(
        "load: {} deliveries in {:.2} s; {}",
        load.sent,
        load.wall.as_secs_f64(),
        answers(&load.statuses, load.transport_errors)
    ));

    // Calls that ran while the database took no connection: sent once its stop began,
    // answered a moment after it was gone (an answer already on its way may arrive a little
    // later) and before it was last seen refusing a connection.
    let settle = Duration::from_millis(250);
    let down = |at: Duration, end: Duration| {
        at >= stopping && end >= down_at + settle && end <= refused_at
    };
    let hooks_down: Vec<&Outcome> = load
        .outcomes
        .iter()
        .filter(|o| down(o.sent_at, o.answered_at()))
        .collect();
    let reads_down: Vec<&Answer> = reads.iter().filter(|a| down(a.at, a.ended_at())).collect();
    let ready_down: Vec<&Answer> = ready.iter().filter(|a| down(a.at, a.ended_at())).collect();
    let mut hook_statuses = std::collections::BTreeMap::new();
    for o in &hooks_down {
        *hook_statuses.entry(o.status.unwrap_or(0)).or_insert(0usize) += 1;
    }
    let slowest_hook = hooks_down
        .iter()
        .map(|o| o.latency)
        .max()
        .unwrap_or_default();
    report.figure(format!(
        "while down: webhooks {hook_statuses:?} (slowest {:.0} ms); API reads {:?}, {}; /ready {:?}",
        slowest_hook.as_secs_f64() * 1000.0,
        api::by_status(reads_down.iter().copied()),
        quantiles(&api::latencies(reads_down.iter().copied())?),
        api::by_status(ready_down.iter().copied()),
    ));
    report.check(
        "while the database is down, no delivery is acknowledged and each is answered 503",
        !hooks_down.is_empty() && hooks_down.iter().all(|o| o.status == Some(503)),
        format!("{hook_statuses:?} (0: no answer)"),
    );
    report.check(
        "while the database is down, API reads answer a JSON:API 503",
        !reads_down.is_empty()
            && reads_down
                .iter()
                .all(|a| a.status == Some(503) && a.jsonapi_error),
        format!(
            "{:?}, {} of {} JSON:API errors",
            api::by_status(reads_down.iter().copied()),
            reads_down.iter().filter(|a| a.jsonapi_error).count(),
            reads_down.len()
        ),
    );
    report.check(
        "while the database is down, /ready answers 503",
        !ready_down.is_empty() && ready_down.iter().all(|a| a.status == Some(503)),
        format!("{:?}", api::by_status(ready_down.iter().copied())),
    );
    // Every call sent while the database was not accepting connections, however it ended.
    let sent_down = |at: Duration| at >= stopping && at <= up_at;
    let slowest = reads
        .iter()
        .chain(&ready)
        .filter(|a| sent_down(a.at))
        .map(|a| a.latency)
        .chain(
            load.outcomes
                .iter()
                .filter(|o| sent_down(o.sent_at))
                .map(|o| o.latency),
        )
        .max()
        .unwrap_or_default();
    report.check(
        format!(
            "no request sent while the database is down hangs (each answered within {NO_HANG:?})"
        ),
        slowest <= NO_HANG,
        format!("slowest answer {:.2} s", slowest.as_secs_f64()),
    );

    // Recovery: the first 2xx sent after the database accepts connections again.
    let first_ok = |times: Vec<(Duration, bool)>| {
        times
            .into_iter()
            .filter(|(at, ok)| *ok && *at >= up_at)
            .map(|(at, _)| at - up_at)
            .min()
    };
    let hook_back = first_ok(
        load.outcomes
            .iter()
            .map(|o| (o.sent_at, o.acknowledged))
            .collect(),
    );
    let read_back = first_ok(reads.iter().map(|a| (a.at, a.ok())).collect());
    let ready_back = first_ok(ready.iter().map(|a| (a.at, a.ok())).collect());
    let secs =
        |d: Option<Duration>| d.map_or("never".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
    report.figure(format!(
        "back after the database accepts connections: first acknowledged delivery {}, first API read 200 {}, /ready 200 {}",
        secs(hook_back),
        secs(read_back),
        secs(ready_back)
    ));
    report.check(
        format!("the same process answers 2xx again within {RECOVERY:?} of the database's start"),
        [hook_back, read_back, ready_back]
            .iter()
            .all(|d| d.is_some_and(|d| d <= RECOVERY))
            && running.service.is_running()
            && running.service.pid() == pid,
        format!(
            "deliveries {}, reads {}, /ready {}; pid {pid} running: {}",
            secs(hook_back),
            secs(read_back),
            secs(ready_back),
            running.service.is_running()
        ),
    );
    let last_reads: Vec<&Answer> = reads.iter().filter(|a| a.at >= up_at + RECOVERY).collect();
    report.check(
        "after the recovery every API read is 200",
        last_reads.iter().all(|a| a.ok()),
        format!("{:?}", api::by_status(last_reads.iter().copied())),
    );

    let acked_ids: Vec<String> = load
        .outcomes
        .iter()
        .filter(|o| o.acknowledged)
        .map(|o| feed.deliveries[o.index].event_id.clone())
        .collect();
    let (url, corpus) = (db.url.clone(), feed.corpus.clone());
    let found = tokio::task::spawn_blocking(move || {
        webhooks::check_acknowledged(&url, &corpus, &acked_ids)
    })
    .await??;
    webhooks::report_acknowledged(&mut report, "during the load", &found);
    let retries = feed.retry(load.unacknowledged(total)).await?;
    report.figure(format!(
        "Stripe's retries: {} rounds, {} deliveries sent; {}",
        retries.rounds,
        retries.sent,
        answers(&retries.statuses, retries.transport_errors)
    ));
    report.check(
        "every delivery is acknowledged in the end",
        retries.left == 0,
        format!("{} left without a 2xx", retries.left),
    );
    webhooks::verify_mirror(&mut report, &db.url, &feed.corpus).await?;
    running.service.stop()?;
    crate::drop_database(db).await;
    Ok(report)
}
