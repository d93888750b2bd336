//! What a tenant lets its end users choose that moves money (issue 12, point 3). By default a
//! non-admin caller may not name a payment's amount or currency (they pay an order or a
//! catalogue price), refund, apply a coupon they were not offered, set a trial, change price
//! without proration, or buy a price that is not in the tenant's mirrored catalogue. The
//! tenant opens each one in its policy (`PUT /stripe/policy`, `sales-block tenant policy`).
//! Admins (the tenant's backend) always may. Every refusal is 403 `forbidden_by_policy`
//! naming the field, decided before anything is sent to Stripe.

use std::collections::BTreeSet;

use actix_web::http::StatusCode;

use crate::caller::Caller;
use crate::db::policies::{self as rows, PolicyRow};
use crate::error::ApiError;
use crate::state::AppState;

/// A money-moving choice a policy may open to end users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Choice {
    /// Name a payment's `amount` and `currency` (instead of an order).
    Amount,
    /// Refund (part of) their payments.
    Refunds,
    /// Apply any coupon (not only the offered ones).
    Coupons,
    /// Set `trial_period_days`.
    TrialPeriodDays,
    /// Change a subscription with `proration_behavior: none`.
    ProrationNone,
    /// Buy prices that are not in the mirrored catalogue.
    UncataloguedPrices,
}

impl Choice {
    pub const ALL: [Choice; 6] = [
        Choice::Amount,
        Choice::Refunds,
        Choice::Coupons,
        Choice::TrialPeriodDays,
        Choice::ProrationNone,
        Choice::UncataloguedPrices,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Choice::Amount => "amount",
            Choice::Refunds => "refunds",
            Choice::Coupons => "coupons",
            Choice::TrialPeriodDays => "trial_period_days",
            Choice::ProrationNone => "proration_none",
            Choice::UncataloguedPrices => "uncatalogued_prices",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == raw.trim())
    }

    /// What a refused caller was not allowed to do, completing "this app does not let its
    /// users ...".
    fn refused(self) -> &'static str {
        match self {
            Choice::Amount => {
                "name a payment's amount or currency: pay an order (order_unique_id) or a catalogue price instead"
            }
            Choice::Refunds => "refund payments: ask the merchant",
            Choice::Coupons => "apply this coupon",
            Choice::TrialPeriodDays => "choose a trial period",
            Choice::ProrationNone => "change a subscription without proration",
            Choice::UncataloguedPrices => "buy prices outside its catalogue (GET /stripe/prices)",
        }
    }
}

/// A tenant's policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub allow: BTreeSet<Choice>,
    /// Coupons users may apply even when `coupons` is not open.
    pub offered_coupons: BTreeSet<String>,
    /// Where unknown orders are looked up.
    pub order_lookup_url: Option<String>,
}

impl Policy {
    /// From its stored row (unknown names, from a newer version, are skipped).
    pub fn from_row(row: &PolicyRow) -> Self {
        let names: Vec<String> = serde_json::from_str(&row.allow).unwrap_or_default();
        let coupons: Vec<String> = serde_json::from_str(&row.offered_coupons).unwrap_or_default();
        Self {
            allow: names.iter().filter_map(|n| Choice::parse(n)).collect(),
            offered_coupons: coupons.into_iter().collect(),
            order_lookup_url: row.order_lookup_url.clone(),
        }
    }

    pub fn allow_names(&self) -> Vec<&'static str> {
        self.allow.iter().map(|c| c.name()).collect()
    }
}

/// A change to a policy: each list given replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyChange {
    pub allow: Option<BTreeSet<Choice>>,
    pub offered_coupons: Option<BTreeSet<String>>,
}

/// Most coupons a policy offers.
const MAX_OFFERED_COUPONS: usize = 100;

/// Checks the lists of a policy change (`at` is where they are in the body).
pub fn parse_change(
    allow: Option<Vec<String>>,
    offered_coupons: Option<Vec<String>>,
    at: &str,
) -> Result<PolicyChange, ApiError> {
    let allow = allow
        .map(|names| {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    Choice::parse(name).ok_or_else(|| {
                        ApiError::validation(
                            format!("{at}/allow/{i}"),
                            format!(
                                "{name:?} is not a policy choice; the choices are {}",
                                Choice::ALL.map(Choice::name).join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<BTreeSet<_>, _>>()
        })
        .transpose()?;
    let offered_coupons = offered_coupons
        .map(|ids| {
            if ids.len() > MAX_OFFERED_COUPONS {
                return Err(ApiError::validation(
                    format!("{at}/offered_coupons"),
                    format!("at most {MAX_OFFERED_COUPONS} coupons"),
                ));
            }
            ids.iter()
                .enumerate()
                .map(|(i, id)| {
                    let id = id.trim();
                    let valid = !id.is_empty()
                        && id.len() <= 255
                        && id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if valid {
                        Ok(id.to_owned())
                    } else {
                        Err(ApiError::validation(
                            format!("{at}/offered_coupons/{i}"),
                            format!("{id:?} is not a coupon id (letters, digits, _ and -)"),
                        ))
                    }
                })
                .collect::<Result<BTreeSet<_>, _>>()
        })
        .transpose()?;
    Ok(PolicyChange {
        allow,
        offered_coupons,
    })
}

/// Applies a change (and, with `url`, sets or with `Some(None)` removes the order lookup URL)
/// and returns the policy, with the new lookup signing secret when a new URL was set.
pub fn save_with(
    conn: &mut crate::db::AnyConnection,
    master: &crate::crypto::MasterKey,
    tenant_id: &str,
    change: PolicyChange,
    url: Option<Option<String>>,
) -> Result<(Policy, Option<String>), ApiError> {
    crate::db::write_transaction(conn, |conn| {
        let mut row = rows::find(conn, tenant_id)?.unwrap_or_else(|| PolicyRow {
            tenant_id: tenant_id.to_owned(),
            allow: "[]".to_owned(),
            offered_coupons: "[]".to_owned(),
            order_lookup_url: None,
            order_lookup_secret_enc: None,
            updated_at: chrono::Utc::now().naive_utc(),
        });
        let mut policy = Policy::from_row(&row);
        if let Some(allow) = change.allow {
            policy.allow = allow;
        }
        if let Some(coupons) = change.offered_coupons {
            policy.offered_coupons = coupons;
        }
        let mut secret = None;
        match url {
            None => {}
            Some(None) => {
                row.order_lookup_url = None;
                row.order_lookup_secret_enc = None;
            }
            Some(Some(url)) => {
                if row.order_lookup_url.as_deref() != Some(url.as_str())
                    || row.order_lookup_secret_enc.is_none()
                {
                    let fresh = crate::crypto::random_token("olsec_", 24);
                    row.order_lookup_secret_enc = Some(master.encrypt(&fresh));
                    secret = Some(fresh);
                }
                row.order_lookup_url = Some(url);
            }
        }
        policy.order_lookup_url = row.order_lookup_url.clone();
        row.allow = serde_json::to_string(&policy.allow_names()).unwrap_or_else(|_| "[]".into());
        row.offered_coupons =
            serde_json::to_string(&policy.offered_coupons).unwrap_or_else(|_| "[]".into());
        row.updated_at = chrono::Utc::now().naive_utc();
        rows::save(conn, &row)?;
        Ok((policy, secret))
    })
}

/// [`save_with`] on the blocking pool.
pub async fn save(
    state: &AppState,
    tenant_id: &str,
    change: PolicyChange,
    url: Option<Option<String>>,
) -> Result<(Policy, Option<String>), ApiError> {
    let (master, tenant_id) = (state.master.clone(), tenant_id.to_owned());
    state
        .db
        .run(move |conn| save_with(conn, &master, &tenant_id, change, url))
        .await
}

/// One money-moving choice a request makes, with where it is in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Choice(Choice, String),
    /// A coupon (or promotion code) id.
    Coupon(String, String),
    /// A price id to buy.
    Price(String, String),
}

/// 403 `forbidden_by_policy` at `pointer`.
pub fn forbidden(pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden_by_policy",
        "Forbidden by the app's policy",
        detail,
    )
    .with_pointer(pointer)
}

/// The tenant's policy (the default, all closed, when it never set one).
pub async fn load(state: &AppState, tenant_id: &str) -> Result<Policy, ApiError> {
    let tenant_id = tenant_id.to_owned();
    state
        .db
        .run(move |conn| {
            rows::find(conn, &tenant_id)
                .map(|row| row.as_ref().map(Policy::from_row).unwrap_or_default())
                .map_err(ApiError::from)
        })
        .await
}

/// Refuses the first of `gates` the caller's policy does not open. Admins pass; a caller
/// whose request makes no gated choice costs nothing.
pub async fn enforce(state: &AppState, caller: &Caller, gates: &[Gate]) -> Result<(), ApiError> {
    if caller.admin || gates.is_empty() {
        return Ok(());
    }
    let policy = load(state, &caller.tenant.id).await?;
    let mut prices = Vec::new();
    for gate in gates {
        match gate {
            Gate::Choice(choice, pointer) if !policy.allow.contains(choice) => {
                return Err(forbidden(
                    pointer,
                    format!(
                        "This app does not let its users {} (policy choice `{}`).",
                        choice.refused(),
                        choice.name()
                    ),
                ));
            }
            Gate::Coupon(id, pointer)
                if !policy.allow.contains(&Choice::Coupons)
                    && !policy.offered_coupons.contains(id) =>
            {
                return Err(forbidden(
                    pointer,
                    format!(
                        "Coupon {id:?} was not offered to you: this app lets its users apply only the coupons it offers (policy `offered_coupons`, or choice `coupons`)."
                    ),
                ));
            }
            Gate::Price(id, pointer) if !policy.allow.contains(&Choice::UncataloguedPrices) => {
                prices.push((id.clone(), pointer.clone()));
            }
            _ => {}
        }
    }
    if prices.is_empty() {
        return Ok(());
    }
    let tenant_id = caller.tenant.id.clone();
    let ids: Vec<String> = prices.iter().map(|(id, _)| id.clone()).collect();
    let known = state
        .db
        .run(move |conn| {
            crate::db::catalog::catalogued_prices(conn, &tenant_id, &ids).map_err(ApiError::from)
        })
        .await?;
    match prices.iter().find(|(id, _)| !known.contains(id)) {
        None => Ok(()),
        Some((id, pointer)) => Err(forbidden(
            pointer,
            format!(
                "Price {id:?} is not in this app's catalogue (GET /stripe/prices lists what can be bought); this app does not let its users {} (policy choice `{}`).",
                Choice::UncataloguedPrices.refused(),
                Choice::UncataloguedPrices.name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_round_trip_by_name_and_unknown_names_are_skipped() {
        for choice in Choice::ALL {
            assert_eq!(Choice::parse(choice.name()), Some(choice));
        }
        assert_eq!(Choice::parse("everything"), None);
        let row = PolicyRow {
            tenant_id: "t".into(),
            allow: r#"["amount","from_the_future","refunds"]"#.into(),
            offered_coupons: r#"["SPRING"]"#.into(),
            order_lookup_url: None,
            order_lookup_secret_enc: None,
            updated_at: chrono::Utc::now().naive_utc(),
        };
        let policy = Policy::from_row(&row);
        assert_eq!(policy.allow_names(), vec!["amount", "refunds"]);
        assert!(policy.offered_coupons.contains("SPRING"));
    }
}
