//! Objects read from Stripe's lists (a historical sync's pages), written through the
//! receiver's own table of mirrored types (`target`). A page is stamped with the second it
//! was requested: Stripe's answer is at least that new, so it wins over older state, loses to
//! newer, and a state of the same second is a tie, settled by re-reading the object as a
//! delivery's tie is.

use chrono::Utc;
use diesel::result::Error as DieselError;
use serde_json::Value;

use crate::db::{AnyConnection, Database, DbError, Freshness, Rule, events};
use crate::error::ApiError;
use crate::stripe::StripeApi;
use crate::stripe::objects::Fields;

use super::apply::apply;
use super::refresh::reread;
use super::target::{Target, fields_of, target_of, write_all};
use super::verify::storable;

/// What writing a page did: how many objects it wrote, and the ties to settle once its
/// transaction committed.
#[derive(Debug, Default)]
pub struct ListedPage {
    pub written: usize,
    ties: Vec<Target>,
}

impl ListedPage {
    /// Objects of the page whose stored state has the page's second (re-read after commit).
    pub fn ties(&self) -> usize {
        self.ties.len()
    }
}

/// A page of listed objects read into what each changes in the mirror: pure work, done
/// while the previous page is being written, so the objects' JSON is parsed, read and freed
/// off the database's path (freeing a page of `serde_json` values alone took about an eighth
/// of the service's CPU in a backfill, docs/BENCHMARKS.md).
#[derive(Debug, Default)]
pub struct ListedTargets {
    targets: Vec<Target>,
    /// Each target's second: when the page that listed it was requested.
    stamps: Vec<i64>,
}

impl ListedTargets {
    /// Adds the objects of the next page.
    pub fn append(&mut self, mut next: ListedTargets) {
        self.targets.append(&mut next.targets);
        self.stamps.append(&mut next.stamps);
    }
}

/// What is read of the objects of a list of `family` (a page is parsed into only that).
pub fn fields(family: &str) -> &'static Fields {
    fields_of(&format!("{family}.updated"))
}

/// Reads `objects` (a page of one list, requested at second `requested_at`: Stripe objects
/// read as their `{family}.updated` events would carry them; `deleted` ones as
/// `{family}.deleted`). Objects of types the mirror does not keep, and objects it cannot
/// keep ([`storable`]), are skipped when written.
pub fn listed_targets(family: &str, objects: &[Value], requested_at: i64) -> ListedTargets {
    let targets = objects
        .iter()
        .map(|object| {
            if !storable(object) {
                tracing::warn!(
                    family,
                    "sync: a listed object with a NUL or an id out of Stripe's shape is skipped"
                );
                return Target::Nothing;
            }
            let deleted = object.get("deleted").and_then(Value::as_bool) == Some(true);
            let kind = format!("{family}.{}", if deleted { "deleted" } else { "updated" });
            target_of(&kind, object)
        })
        .collect();
    ListedTargets {
        targets,
        stamps: vec![requested_at; objects.len()],
    }
}

/// Writes pages read by [`listed_targets`], each object as state of the second its page was
/// requested, inside the caller's transaction.
pub fn record_listed(
    conn: &mut AnyConnection,
    tenant_id: &str,
    page: &ListedTargets,
) -> Result<ListedPage, DieselError> {
    let targets = &page.targets;
    let mut order: Vec<usize> = (0..targets.len())
        .filter(|&i| !matches!(targets[i], Target::Nothing))
        .collect();
    // Rows locked in one order by every writer (see `writer`); an object listed twice once,
    // as listed last.
    order.sort_by(|&a, &b| {
        (targets[a].lock_key(), std::cmp::Reverse(a))
            .cmp(&(targets[b].lock_key(), std::cmp::Reverse(b)))
    });
    order.dedup_by(|a, b| targets[*a].lock_key() == targets[*b].lock_key());
    let items: Vec<(usize, &str, &Target, i64)> = order
        .iter()
        .map(|&i| (i, tenant_id, &targets[i], page.stamps[i]))
        .collect();
    let outcomes = write_all(conn, &items, Rule::Listed)?;
    let mut page = ListedPage::default();
    for (i, outcome) in outcomes {
        match outcome {
            events::APPLIED => page.written += 1,
            events::REFRESH_PENDING => page.ties.push(targets[i].clone()),
            _ => {}
        }
    }
    Ok(page)
}

/// Settles a page's ties: each object re-read from Stripe and written as its current state.
/// Returns how many were written.
pub async fn settle_ties(
    db: &Database,
    stripe: &dyn StripeApi,
    tenant_id: &str,
    page: ListedPage,
) -> Result<usize, ApiError> {
    let mut written = 0;
    for seen in page.ties {
        let fresh = reread(stripe, &seen).await?;
        let tenant = tenant_id.to_owned();
        let now = Utc::now().timestamp();
        let outcome = db
            .run(move |conn| {
                apply(conn, &tenant, &fresh, Freshness::Current(now)).map_err(DbError::from)
            })
            .await
            .map_err(ApiError::from)?;
        written += usize::from(outcome == events::APPLIED);
    }
    Ok(written)
}
