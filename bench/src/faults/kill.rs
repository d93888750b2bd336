//! Scenario 1: `kill -9` of the service in the middle of a webhook load, a start again on the
//! same port while the load goes on, then Stripe's retries of every delivery left without a 2xx.
//! Every event acknowledged before the kill is stored and in the mirror; in the end every event
//! is stored once and the mirror holds each object's final state.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sales_bench::service::{self, ServiceEnv};

use crate::Ctx;
use crate::report::{Report, ms};
use crate::webhooks::{self, Feed, answers};

pub struct Options {
    pub events: usize,
    pub connections: usize,
    pub seed: u64,
    /// The kill comes when this share of the corpus has been acknowledged.
    pub kill_at: f64,
    /// How long the service stays dead before it is started again.
    pub down: Duration,
}

pub async fn run(ctx: &Ctx, dir: &Path, options: &Options) -> anyhow::Result<Report> {
    let mut report = Report::new("1. kill -9 of the service during a webhook load");
    let db = ctx.database().await?;
    let env = ServiceEnv::new(ctx.bin.clone(), dir, db.url.clone(), 16);
    let http = crate::api::client(Duration::from_secs(30))?;
    let running = service::start(&env, &http).await?;
    let port = crate::port_of(&running.base_url)?;
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
        "corpus: {total} deliveries, each a new event ({} reversed pairs); {} connections; kill after {:.0}% acknowledged",
        feed.corpus.stats.reversed_pairs,
        options.connections,
        options.kill_at * 100.0
    ));

    let acked = Arc::new(AtomicUsize::new(0));
    let epoch = Instant::now();
    let load = {
        let (deliveries, counter) = (feed.deliveries.clone(), acked.clone());
        let feed = &feed;
        async move { feed.send(deliveries, Some(counter)).await }
    };
    let mut service = Some(running.service);
    let fault = async {
        let threshold = (total as f64 * options.kill_at) as usize;
        while acked.load(Ordering::Relaxed) < threshold {
            anyhow::ensure!(
                epoch.elapsed() < Duration::from_secs(600),
                "the load did not reach the kill point within 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pid = service.as_ref().map(|s| s.pid());
        if let Some(s) = service.take() {
            s.stop()?;
        }
        let killed_at = epoch.elapsed();
        let acked_at_kill = acked.load(Ordering::Relaxed);
        tokio::time::sleep(options.down).await;
        let restart = Instant::now();
        let (again, _) = env
            .serve_on(&http, port, &[], "service-restarted.log")
            .await?;
        anyhow::Ok((pid, killed_at, acked_at_kill, restart.elapsed(), again))
    };
    let (load, fault) = tokio::join!(load, fault);
    let (load, (pid, killed_at, acked_at_kill, restart_took, mut again)) = (load?, fault?);
    report.figure(format!(
        "killed pid {} with SIGKILL at {:.2} s, {acked_at_kill} deliveries acknowledged by then; \
         started again on the same port after {} down, answering /health {} after its start",
        pid.unwrap_or_default(),
        killed_at.as_secs_f64(),
        ms(options.down),
        ms(restart_took),
    ));
    report.figure(format!(
        "load: {} deliveries in {:.2} s; {}",
        load.sent,
        load.wall.as_secs_f64(),
        answers(&load.statuses, load.transport_errors)
    ));

    // Acknowledged before the kill: answered 2xx before the process died. No delivery of a
    // fresh corpus is sent twice unless it was not acknowledged, so whatever the database
    // holds of them now it held at the kill.
    let before: Vec<String> = load
        .outcomes
        .iter()
        .filter(|o| o.acknowledged && o.answered_at() <= killed_at)
        .map(|o| feed.deliveries[o.index].event_id.clone())
        .collect();
    let all_acked: Vec<String> = load
        .outcomes
        .iter()
        .filter(|o| o.acknowledged)
        .map(|o| feed.deliveries[o.index].event_id.clone())
        .collect();
    let unacked = load.unacknowledged(total);
    report.figure(format!(
        "acknowledged: {} before the kill, {} after the start again; {} not acknowledged (the ones in flight at the kill and those sent while it was down)",
        before.len(),
        all_acked.len() - before.len(),
        unacked.len()
    ));
    let unacked_ids: Vec<String> = unacked
        .iter()
        .map(|&i| feed.deliveries[i].event_id.clone())
        .collect();
    let (url, corpus) = (db.url.clone(), feed.corpus.clone());
    let found = tokio::task::spawn_blocking(move || {
        anyhow::Ok((
            webhooks::check_acknowledged(&url, &corpus, &before)?,
            webhooks::check_acknowledged(&url, &corpus, &all_acked)?,
            webhooks::check_acknowledged(&url, &corpus, &unacked_ids)?,
        ))
    })
    .await??;
    webhooks::report_acknowledged(&mut report, "before the kill", &found.0);
    webhooks::report_acknowledged(&mut report, "during the load", &found.1);
    report.figure(format!(
        "of the {} not acknowledged, {} were stored all the same (committed, the answer lost with the process): their retries must be answered as repeats",
        found.2.events, found.2.stored
    ));

    let retries = feed.retry(unacked).await?;
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
    report.check(
        "the restarted service is still running",
        again.is_running(),
        "after the retries",
    );
    again.stop()?;
    crate::drop_database(db).await;
    Ok(report)
}
