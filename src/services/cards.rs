//! Saved cards: a payment method attached to one of the caller's customers at Stripe (and
//! made its default), listed, and detached; charged off-session by `POST /stripe/payments`
//! with `saved_card_id`.

use serde::Deserialize;

use crate::caller::Caller;
use crate::db::customers as customer_rows;
use crate::db::listing::{self, Page};
use crate::db::payment_methods::{self as rows, PaymentMethodRow};
use crate::domain::paging::{FirstPage, Paging};
use crate::domain::{Email, optional_text, query_text, stripe_id};
use crate::error::ApiError;
use crate::services::customers::{self, CreateCustomerFields, NewCustomerInput};
use crate::services::{owned, paging};
use crate::state::AppState;

/// The fields of a save-card request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct SaveCardFields {
    /// A `pm_` id from Stripe.js (or a test token such as `pm_card_visa`). Required.
    pub payment_method_id: Option<String>,
    /// The customer (our unique id, user unique id or `cus_`); or give `customer_email`.
    pub customer_id: Option<String>,
    /// Finds the caller's customer with this email, or creates one.
    pub customer_email: Option<String>,
    pub customer_name: Option<String>,
    /// Make it the customer's default card (default true).
    pub set_default: Option<bool>,
}

enum CustomerChoice {
    Id(String),
    Email(Email, Option<String>),
}

pub struct SaveCard {
    payment_method: String,
    customer: CustomerChoice,
    set_default: bool,
}

pub fn parse(fields: SaveCardFields, at: &str) -> Result<SaveCard, ApiError> {
    let pointer = format!("{at}/payment_method_id");
    let payment_method = optional_text(fields.payment_method_id, &pointer, 255)?
        .ok_or_else(|| {
            ApiError::validation(
                &pointer,
                "payment_method_id is required: a pm_ id from Stripe.js",
            )
        })
        .and_then(|pm| stripe_id(&pm, &["pm_", "card_"], &pointer, "payment method"))?;
    let customer_id = optional_text(fields.customer_id, &format!("{at}/customer_id"), 255)?;
    let email = optional_text(fields.customer_email, &format!("{at}/customer_email"), 512)?;
    let name = optional_text(fields.customer_name, &format!("{at}/customer_name"), 256)?;
    let customer = match (customer_id, email) {
        (Some(id), _) => CustomerChoice::Id(id),
        (None, Some(email)) => {
            CustomerChoice::Email(Email::parse(&email, &format!("{at}/customer_email"))?, name)
        }
        (None, None) => {
            return Err(ApiError::validation(
                format!("{at}/customer_id"),
                "customer_id or customer_email is required: whose card this is",
            ));
        }
    };
    Ok(SaveCard {
        payment_method,
        customer,
        set_default: fields.set_default.unwrap_or(true),
    })
}

/// Attaches the card at Stripe to the chosen (or a new) customer and mirrors it. Returns the
/// card and whether it is the customer's default.
pub async fn save(
    state: &AppState,
    caller: &Caller,
    request: SaveCard,
) -> Result<(PaymentMethodRow, bool), ApiError> {
    let customer = match request.customer {
        CustomerChoice::Id(raw) => {
            owned::resolve_customer(state, caller, &raw)
                .await?
                .stripe_id
        }
        CustomerChoice::Email(email, name) => {
            let (tenant_id, visibility) = (caller.tenant.id.clone(), caller.visibility());
            let wanted = email.as_str().to_owned();
            let found = state
                .db
                .run(move |conn| {
                    customer_rows::find_by_email(conn, &tenant_id, &wanted, &visibility)
                        .map_err(ApiError::from)
                })
                .await?;
            match found {
                Some(row) => row.stripe_customer_id,
                None => {
                    let fields = CreateCustomerFields {
                        email: Some(email.as_str().to_owned()),
                        name,
                        ..CreateCustomerFields::default()
                    };
                    let input = NewCustomerInput::parse(fields, "/card")?;
                    customers::create_customer(state, caller, input)
                        .await?
                        .stripe_customer_id
                }
            }
        }
    };
    let card = caller
        .tenant
        .stripe
        .attach_card(
            &request.payment_method,
            &customer,
            request.set_default,
            caller.stripe_key(),
        )
        .await?;
    let (tenant_id, owner) = (caller.tenant.id.clone(), caller.subject.clone());
    let now = chrono::Utc::now().timestamp();
    let default_of = request.set_default.then_some(customer);
    let is_default = default_of.is_some();
    let row = state
        .db
        .run(move |conn| {
            rows::record(conn, &tenant_id, &owner, &card, now, default_of.as_deref())
                .map_err(ApiError::from)
        })
        .await?;
    Ok((row, is_default))
}

crate::domain::paging::paged_query! {
    /// `customer_id` and paging of the card list (23blocks pages by default).
    pub struct CardsQuery {
        /// Only this customer's cards (unique id, user unique id or `cus_`).
        pub customer_id: Option<String>,
    }
}

/// One page of the attached cards the caller may see, of one customer if `customer_id` is
/// given.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    query: &CardsQuery,
) -> Result<(Page<(PaymentMethodRow, bool)>, Paging), ApiError> {
    let paging = Paging::parse(query.paging(), FirstPage::Pages)?;
    let customer = match query_text(query.customer_id.as_deref()) {
        Some(raw) => Some(owned::resolve_customer(state, caller, raw).await?.stripe_id),
        None => None,
    };
    let (tenant_id, visibility) = (caller.tenant.id.clone(), caller.visibility());
    let reading = paging.clone();
    let page = state
        .db
        .run(move |conn| {
            listing::snapshot(conn, reading.offset_page(), |conn| {
                let start = paging::start(&reading, "card", |id| {
                    rows::list_position(conn, &tenant_id, id, &visibility)
                })?;
                let limit = reading.limit();
                rows::list_attached(
                    conn,
                    &tenant_id,
                    customer.as_deref(),
                    &visibility,
                    &start,
                    limit,
                )
                .map_err(ApiError::from)
            })
        })
        .await?;
    Ok((page, paging))
}

/// Detaches the card at Stripe; the mirror keeps it without a customer.
pub async fn delete(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<PaymentMethodRow, ApiError> {
    let card = owned::find_saved_card(state, caller, any_id).await?;
    let detached = caller
        .tenant
        .stripe
        .detach_card(&card.stripe_payment_method_id, caller.stripe_key())
        .await?;
    let (tenant_id, owner) = (caller.tenant.id.clone(), caller.subject.clone());
    let now = chrono::Utc::now().timestamp();
    state
        .db
        .run(move |conn| {
            rows::record(conn, &tenant_id, &owner, &detached, now, None).map_err(ApiError::from)
        })
        .await
}
