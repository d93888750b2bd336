//! Rolling the master key: every stored secret re-encrypted under a new key in one
//! transaction (`sales-block rotate-master-key`).

use anyhow::Context;
use serde::Serialize;

use crate::crypto::MasterKey;
use crate::db::{self, AnyConnection};

/// How many values were re-encrypted, per kind.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Resealed {
    pub tenants: usize,
    pub tenant_secrets: usize,
    pub webhook_secrets: usize,
    pub idempotent_answers: usize,
    pub order_lookup_secrets: usize,
    /// Stripe Apps OAuth tokens (tenants' and waiting claims').
    pub oauth_tokens: usize,
    /// Values already under the new key (a rotation run again).
    pub already_current: usize,
}

/// Re-encrypts every stored secret under `keys`' current key, decrypting each with whichever
/// of `keys` (current or previous) sealed it: tenants' JWT secrets, Stripe keys and
/// notification secrets, webhook endpoints' signing secrets, policies' order lookup secrets,
/// and saved idempotent answers. One
/// transaction: either every value moves, or none does. A value no key decrypts stops the
/// rotation with its table and row, so nothing is lost.
pub fn rotate(conn: &mut AnyConnection, keys: &MasterKey) -> anyhow::Result<Resealed> {
    db::write_transaction(conn, |conn| {
        let mut done = Resealed::default();
        let reseal = |sealed: &str, what: &str, done: &mut Resealed| {
            if keys.is_current(sealed) {
                done.already_current += 1;
                return Ok(None);
            }
            let plain = keys.decrypt(sealed).with_context(|| what.to_owned())?;
            Ok::<_, anyhow::Error>(Some(keys.encrypt(&plain)))
        };

        for (id, jwt, stripe, notify) in db::tenants::sealed_secrets(conn)? {
            let mut changed = false;
            let mut next = |value: &str, column: &str, done: &mut Resealed| {
                let found = reseal(value, &format!("tenants.{column} of tenant {id}"), done)?;
                changed |= found.is_some();
                done.tenant_secrets += usize::from(found.is_some());
                Ok::<_, anyhow::Error>(found.unwrap_or_else(|| value.to_owned()))
            };
            let jwt = jwt
                .map(|v| next(&v, "jwt_secret_enc", &mut done))
                .transpose()?;
            let stripe = next(&stripe, "stripe_secret_key_enc", &mut done)?;
            let notify = notify
                .map(|v| next(&v, "notify_secret_enc", &mut done))
                .transpose()?;
            if changed {
                db::tenants::reseal_secrets(conn, &(id, jwt, stripe, notify))?;
                done.tenants += 1;
            }
        }
        for (id, sealed) in db::webhook_endpoints::sealed_secrets(conn)? {
            let what = format!("webhook_secrets.secret_enc of row {id}");
            if let Some(resealed) = reseal(&sealed, &what, &mut done)? {
                db::webhook_endpoints::reseal_secret(conn, &id, &resealed)?;
                done.webhook_secrets += 1;
            }
        }
        for (tenant_id, sealed) in db::policies::sealed_secrets(conn)? {
            let what = format!("tenant_policies.order_lookup_secret_enc of tenant {tenant_id}");
            if let Some(resealed) = reseal(&sealed, &what, &mut done)? {
                db::policies::reseal_secret(conn, &tenant_id, &resealed)?;
                done.order_lookup_secrets += 1;
            }
        }
        for was in db::connect::sealed_tokens(conn)? {
            let (table, id, refresh, access) = &was;
            let mut moved = 0;
            let mut next = |value: &Option<String>, column: &str, done: &mut Resealed| {
                value
                    .as_deref()
                    .map(|v| {
                        let found = reseal(v, &format!("{table}.{column} of row {id}"), done)?;
                        moved += usize::from(found.is_some());
                        Ok::<_, anyhow::Error>(found.unwrap_or_else(|| v.to_owned()))
                    })
                    .transpose()
            };
            let refresh = next(refresh, "refresh_token_enc", &mut done)?;
            let access = next(access, "access_token_enc", &mut done)?;
            if moved > 0
                && db::connect::reseal_tokens(conn, &was, refresh.as_deref(), access.as_deref())?
            {
                done.oauth_tokens += moved;
            }
        }
        for (id, sealed) in db::idempotency_keys::sealed_answers(conn)? {
            let what = format!("idempotency_keys.response_body of row {id}");
            if let Some(resealed) = reseal(&sealed, &what, &mut done)? {
                db::idempotency_keys::reseal_answer(conn, &id, &resealed)?;
                done.idempotent_answers += 1;
            }
        }
        Ok(done)
    })
}
