//! Customers: validated input, creation at Stripe with the tenant's key, the mirror row, and
//! billing portal sessions.

use chrono::Utc;

use crate::auth::Caller;
use crate::db::customers::{self as rows, Customer, PageStart};
use crate::domain::{
    Email, Metadata, PageRequest, optional_text, parse_web_url, query_number, query_text,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::objects::{CustomerSnapshot, PortalSession};
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

/// The caller's customer named by any id form, or 404 (also for another tenant's or another
/// user's customer: existence is never leaked).
pub async fn find_customer(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
) -> Result<Customer, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    let wanted = any_id.to_owned();
    state
        .db
        .run(move |conn| {
            rows::find_by_any_id(conn, &tenant_id, &wanted, &visibility).map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No customer {any_id:?} in this app.")))
}

/// The raw fields of a portal request.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct PortalFields {
    /// Where Stripe sends the customer back to; an absolute http(s) URL.
    pub return_url: Option<String>,
    /// Optional; when given it must name the same customer as the path.
    pub customer_id: Option<String>,
}

/// Opens a Stripe billing portal session for the customer `any_id` names.
pub async fn open_portal(
    state: &AppState,
    caller: &Caller,
    any_id: &str,
    fields: PortalFields,
    at: &str,
) -> Result<(Customer, PortalSession), ApiError> {
    let return_url = match optional_text(fields.return_url, &format!("{at}/return_url"), 2048)? {
        Some(raw) => parse_web_url(&raw, &format!("{at}/return_url"))?,
        None => {
            return Err(ApiError::validation(
                format!("{at}/return_url"),
                "return_url is required: the page Stripe sends the customer back to",
            ));
        }
    };
    let customer = find_customer(state, caller, any_id).await?;
    if let Some(other) = optional_text(fields.customer_id, &format!("{at}/customer_id"), 255)?
        && other != customer.id
        && other != customer.stripe_customer_id
        && customer.user_unique_id.as_deref() != Some(other.as_str())
    {
        return Err(ApiError::validation(
            format!("{at}/customer_id"),
            "customer_id names a different customer than the URL",
        ));
    }
    let session = caller
        .tenant
        .stripe
        .create_portal_session(
            &customer.stripe_customer_id,
            &return_url,
            caller.stripe_key(),
        )
        .await?;
    Ok((customer, session))
}

/// A customer reference from a request body, resolved for the caller.
#[derive(Debug, Clone)]
pub struct CustomerRef {
    /// The `cus_...` id to send to Stripe.
    pub stripe_id: String,
    /// Our row, when the customer is mirrored.
    pub row: Option<Customer>,
}

/// Resolves `customer_id` (our unique id, the user unique id, or a `cus_` id). A customer the
/// caller cannot see is 404, like every other id. Admins may also name a `cus_` customer that
/// was created outside this service: Stripe then decides whether it exists.
pub async fn resolve_customer(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<CustomerRef, ApiError> {
    match find_customer(state, caller, raw).await {
        Ok(row) => Ok(CustomerRef {
            stripe_id: row.stripe_customer_id.clone(),
            row: Some(row),
        }),
        Err(err) if err.status.as_u16() == 404 && caller.admin && raw.starts_with("cus_") => {
            Ok(CustomerRef {
                stripe_id: raw.to_owned(),
                row: None,
            })
        }
        Err(err) => Err(err),
    }
}

/// `GET /stripe/customers`: Stripe's cursor paging, or the 23blocks pages when `page` or
/// `records` is given (STRIPE_RULES.md, Lists).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// Stripe paging: 1 to 100, default 10.
    pub limit: Option<String>,
    /// Stripe paging: the page older than this customer (the last of the previous page), by
    /// our unique id or the `cus_` id.
    pub starting_after: Option<String>,
    /// Stripe paging: the page newer than this customer (the first of the next page).
    pub ending_before: Option<String>,
    /// 23blocks paging: the page, from 1.
    pub page: Option<String>,
    /// 23blocks paging: 1 to 100 per page, default 20.
    pub records: Option<String>,
}

/// A Stripe list cursor: the customer a page starts after or ends before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    StartingAfter(String),
    EndingBefore(String),
}

/// How a customer list is paged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerPaging {
    /// Stripe's: `limit` customers from the cursor (from the newest without one).
    Cursor { limit: i64, cursor: Option<Cursor> },
    /// 23blocks': page `page` of `per_page`.
    Pages(PageRequest),
}

pub fn parse_list(query: &ListCustomersQuery) -> Result<CustomerPaging, ApiError> {
    let page = query_text(query.page.as_deref());
    let records = query_text(query.records.as_deref());
    let limit = query_text(query.limit.as_deref());
    let starting_after = query_text(query.starting_after.as_deref());
    let ending_before = query_text(query.ending_before.as_deref());
    if page.is_some() || records.is_some() {
        let stripe_paging = [
            ("limit", limit),
            ("starting_after", starting_after),
            ("ending_before", ending_before),
        ];
        if let Some((name, _)) = stripe_paging.into_iter().find(|(_, v)| v.is_some()) {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("page/records and limit/starting_after/ending_before are two ways to page; send one (got {name} with page or records)"),
            )
            .with_parameter(name));
        }
        return Ok(CustomerPaging::Pages(PageRequest::parse(
            page, records, 20,
        )?));
    }
    let cursor = match (starting_after, ending_before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "starting_after and ending_before cannot be used together",
            )
            .with_parameter("ending_before"));
        }
        (Some(id), None) => Some(Cursor::StartingAfter(id.to_owned())),
        (None, Some(id)) => Some(Cursor::EndingBefore(id.to_owned())),
        (None, None) => None,
    };
    Ok(CustomerPaging::Cursor {
        limit: query_number(limit, "limit", 10, 1, 100)?,
        cursor,
    })
}

/// One page of a customer list.
#[derive(Debug)]
pub struct CustomerPage {
    pub rows: Vec<Customer>,
    /// All the customers the caller sees.
    pub total: i64,
    /// Whether more customers follow this page in its direction: older ones, or newer ones
    /// for `ending_before` (as Stripe's `has_more`).
    pub has_more: bool,
}

/// The customers the caller sees (admins: all of the tenant's; others: their own), not
/// deleted, newest first.
pub async fn list_customers(
    state: &AppState,
    caller: &Caller,
    paging: CustomerPaging,
) -> Result<CustomerPage, ApiError> {
    let tenant_id = caller.tenant.id.clone();
    let visibility = caller.visibility();
    state
        .db
        .run(move |conn| {
            let position = |name: &str, id: &str, conn: &mut crate::db::AnyConnection| {
                rows::list_position(conn, &tenant_id, id, &visibility)?.ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("{name}: no customer {id:?} in this app"),
                    )
                    .with_parameter(name)
                })
            };
            let (start, limit) = match &paging {
                CustomerPaging::Pages(pages) => (PageStart::Offset(pages.offset()), pages.per_page),
                CustomerPaging::Cursor { limit, cursor } => {
                    let start = match cursor {
                        None => PageStart::Offset(0),
                        Some(Cursor::StartingAfter(id)) => {
                            PageStart::After(position("starting_after", id, conn)?)
                        }
                        Some(Cursor::EndingBefore(id)) => {
                            PageStart::Before(position("ending_before", id, conn)?)
                        }
                    };
                    (start, *limit)
                }
            };
            // One row more than asked tells whether another page follows.
            let (mut rows, total) = rows::list(conn, &tenant_id, &visibility, &start, limit + 1)?;
            let has_more = rows.len() as i64 > limit;
            rows.truncate(usize::try_from(limit).unwrap_or(0));
            if matches!(start, PageStart::Before(_)) {
                rows.reverse();
            }
            Ok(CustomerPage {
                rows,
                total,
                has_more,
            })
        })
        .await
}
