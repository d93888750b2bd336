//! `GET /openapi.json`, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{customers, health};

#[derive(OpenApi)]
#[openapi(
    info(title = "sales-block", description = "The 23blocks sales block's Stripe routes"),
    paths(
        health::health,
        health::ready,
        customers::create_customer,
        customers::create_portal,
    ),
    components(schemas(
        crate::customers::CreateCustomerFields,
        crate::customers::PortalFields,
        customers::CustomerAttributes,
        customers::PortalAttributes,
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "The app's key; AppId, api-key and X-App-Id are accepted too",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
