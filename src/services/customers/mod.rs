//! Customers: validated input, creation at Stripe with the tenant's key, the mirror row;
//! billing portal sessions are `portal.rs`, the list `list.rs`, update, delete and refresh
//! `change.rs`.

mod change;
mod list;
mod portal;

use chrono::Utc;

/// `GET /stripe/customers/{unique_id}`: the caller's customer by any id form.
pub use crate::services::owned::find_customer;
pub use change::{
    CustomerUpdate, UpdateCustomerFields, delete_customer, refresh_customer, update_customer,
};
pub use list::{ListCustomersQuery, list_customers, parse_list};
pub use portal::{PortalFields, open_portal};

use crate::caller::Caller;
use crate::db::customers::{self as rows, Customer};
use crate::domain::{Email, Metadata, optional_text};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::objects::CustomerSnapshot;
use crate::stripe::requests::CustomerParams;

/// Who a customer stands for (the SDK's `identity_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityType {
    User,
    Customer,
    Entity,
}

impl IdentityType {
    pub fn parse(raw: Option<&str>, pointer: &str) -> Result<Self, ApiError> {
        match raw.map(str::trim) {
            None | Some("") | Some("user") => Ok(Self::User),
            Some("customer") => Ok(Self::Customer),
            Some("entity") => Ok(Self::Entity),
            Some(other) => Err(ApiError::validation(
                pointer,
                format!("identity_type must be one of user, customer, entity (got {other:?})"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Customer => "customer",
            Self::Entity => "entity",
        }
    }
}

/// The raw fields of a create-customer request, as the spec and the SDK send them.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct CreateCustomerFields {
    /// Required unless `identity_type` is `entity`.
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    /// Stripe metadata: ≤ 50 keys, keys ≤ 40 chars, values ≤ 500 chars.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// A payment method (or test token such as `pm_card_visa`) to attach as the default.
    pub token: Option<String>,
    pub user_unique_id: Option<String>,
    /// `user` (default), `customer` or `entity`.
    pub identity_type: Option<String>,
    pub company_unique_id: Option<String>,
    pub entity_unique_id: Option<String>,
    pub entity_type: Option<String>,
}

/// A create-customer request that passed validation.
#[derive(Debug)]
pub struct NewCustomerInput {
    pub email: Option<Email>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub token: Option<String>,
    pub user_unique_id: Option<String>,
    pub identity_type: IdentityType,
    pub company_unique_id: Option<String>,
    pub entity_unique_id: Option<String>,
    pub entity_type: Option<String>,
    /// Where the fields sit in the body (`/customer`), for errors found later.
    pub at: String,
}

impl NewCustomerInput {
    /// `at` is the JSON pointer the fields live under (`/customer`).
    pub fn parse(fields: CreateCustomerFields, at: &str) -> Result<Self, ApiError> {
        let identity_type = IdentityType::parse(
            fields.identity_type.as_deref(),
            &format!("{at}/identity_type"),
        )?;
        let email = match optional_text(fields.email, &format!("{at}/email"), 512)? {
            Some(raw) => Some(Email::parse(&raw, &format!("{at}/email"))?),
            None if identity_type == IdentityType::Entity => None,
            None => {
                return Err(ApiError::validation(
                    format!("{at}/email"),
                    "email is required (it may be left out only when identity_type is entity)",
                ));
            }
        };
        let token = optional_text(fields.token, &format!("{at}/token"), 255)?;
        if let Some(token) = &token
            && !(token.starts_with("pm_")
                || token.starts_with("tok_")
                || token.starts_with("card_"))
        {
            return Err(ApiError::validation(
                format!("{at}/token"),
                "token must be a Stripe payment method id (pm_...) or token (tok_...)",
            ));
        }
        Ok(Self {
            email,
            name: optional_text(fields.name, &format!("{at}/name"), 256)?,
            phone: optional_text(fields.phone, &format!("{at}/phone"), 40)?,
            description: optional_text(fields.description, &format!("{at}/description"), 1000)?,
            metadata: Metadata::parse(fields.metadata.as_ref(), &format!("{at}/metadata"))?,
            token,
            user_unique_id: optional_text(
                fields.user_unique_id,
                &format!("{at}/user_unique_id"),
                255,
            )?,
            identity_type,
            company_unique_id: optional_text(
                fields.company_unique_id,
                &format!("{at}/company_unique_id"),
                255,
            )?,
            entity_unique_id: optional_text(
                fields.entity_unique_id,
                &format!("{at}/entity_unique_id"),
                255,
            )?,
            entity_type: optional_text(fields.entity_type, &format!("{at}/entity_type"), 255)?,
            at: at.to_owned(),
        })
    }

    /// Whose customer this is: a non-admin caller may only create customers that stand for
    /// themselves. `user_unique_id` and `company_unique_id` name whom a customer stands for,
    /// and a customer standing for a user is visible to that user and usable with their cards;
    /// so only an admin (the tenant's backend) may name anyone other than the caller's own
    /// `sub`. Refused with 403 `identity_not_yours`, before Stripe is called.
    fn check_identity(&self, caller: &Caller) -> Result<(), ApiError> {
        if caller.admin {
            return Ok(());
        }
        for (name, value) in [
            ("user_unique_id", &self.user_unique_id),
            ("company_unique_id", &self.company_unique_id),
        ] {
            if let Some(value) = value
                && value != &caller.subject
            {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::FORBIDDEN,
                    "identity_not_yours",
                    "Forbidden",
                    format!(
                        "{name} {value:?} is not you: a customer you create always stands for the user of your token (sub {:?}); only an admin of this app may create one for someone else",
                        caller.subject
                    ),
                )
                .with_pointer(format!("{}/{name}", self.at)));
            }
        }
        Ok(())
    }
}

/// Creates the customer at Stripe with the tenant's key, then mirrors it, owned by the
/// caller. Stripe's `customer.created` delivery may be mirrored before this request writes
/// its row: the row is then claimed, not inserted a second time.
pub async fn create_customer(
    state: &AppState,
    caller: &Caller,
    input: NewCustomerInput,
) -> Result<Customer, ApiError> {
    input.check_identity(caller)?;
    let created: CustomerSnapshot = caller
        .tenant
        .stripe
        .create_customer(
            CustomerParams {
                email: input.email.as_ref().map(Email::as_str),
                name: input.name.as_deref(),
                phone: input.phone.as_deref(),
                description: input.description.as_deref(),
                metadata: input.metadata.0.clone(),
                payment_method: input.token.as_deref(),
            },
            caller.stripe_key(),
        )
        .await?;
    let tenant_id = caller.tenant.id.clone();
    let owner = caller.subject.clone();
    let now = Utc::now().timestamp();
    state
        .db
        .run(move |conn| {
            let identity = rows::Identity {
                owner_subject: &owner,
                user_unique_id: input.user_unique_id.as_deref(),
                identity_type: input.identity_type.as_str(),
                company_unique_id: input.company_unique_id.as_deref(),
                entity_unique_id: input.entity_unique_id.as_deref(),
                entity_type: input.entity_type.as_deref(),
            };
            rows::record_created(conn, &tenant_id, &identity, &created, now).map_err(ApiError::from)
        })
        .await
}
