//! The caller of a request: the tenant it was authenticated for, its subject and role, and
//! its idempotency key. Authenticated by `http::auth`; the use cases take it.

use std::sync::Arc;

use crate::db::customers::Visibility;
use crate::error::ApiError;
use crate::stripe::{Key, RequestKey};
use crate::tenants::TenantContext;

/// An authenticated caller of a tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Arc<TenantContext>,
    pub subject: String,
    pub admin: bool,
    /// The request's idempotency key, when the client sent one: the Stripe writes made for
    /// this caller's request take their keys from it (set by `http::idempotency`).
    pub key: Option<Arc<RequestKey>>,
}

impl Caller {
    /// The key the Stripe writes of this request are made under.
    pub fn stripe_key(&self) -> Key<'_> {
        self.key.as_deref()
    }

    /// What this caller may see of the tenant's data.
    pub fn visibility(&self) -> Visibility {
        if self.admin {
            Visibility::All
        } else {
            Visibility::Subject(self.subject.clone())
        }
    }

    /// 403 `admin_required` unless the caller is an admin; `what` completes "Only an admin of
    /// this app ... can ..." (e.g. "manage webhook endpoints").
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.admin {
            return Ok(());
        }
        Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "admin_required",
            "Forbidden",
            format!("Only an admin of this app (role admin or scope sales:admin) can {what}."),
        ))
    }
}
