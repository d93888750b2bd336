//! Bounds on the ids a client sends in a request's path segments and query values (issue 12,
//! point 10): a middleware on the whole app answers 400 before routing. What an acceptable id
//! is, and the check of a JSON body's id-like fields (`parse_body`), are `domain::ids`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::domain::ids::{MAX_ID_BYTES, id_problem};
use crate::error::ApiError;

/// The longest query value accepted (filters, cursors and page numbers are far shorter).
const MAX_QUERY_VALUE_BYTES: usize = 1024;

/// The first problem of a request's path segments or query values, as the error to answer.
fn check_request(path: &str, query: &str) -> Result<(), ApiError> {
    for segment in path.split('/') {
        // Percent-decoded as the router will decode it.
        let problem = match percent_encoding::percent_decode_str(segment).decode_utf8() {
            Err(_) => Some("is not UTF-8"),
            Ok(decoded) => id_problem(&decoded),
        };
        if let Some(problem) = problem {
            return Err(ApiError::bad_request(
                "invalid_path",
                format!("A path segment {problem}; ids are at most {MAX_ID_BYTES} bytes of text."),
            ));
        }
    }
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let problem = if value.len() > MAX_QUERY_VALUE_BYTES {
            Some("is longer than 1024 bytes")
        } else if value.chars().any(char::is_control) || name.chars().any(char::is_control) {
            Some("contains a control character")
        } else {
            None
        };
        if let Some(problem) = problem {
            let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("The query parameter {shown:?} {problem}."),
            )
            .with_parameter(shown));
        }
    }
    Ok(())
}

/// The middleware: a request whose path or query holds an oversized or control-character id
/// is answered 400 before routing, so no handler, and no database, ever sees it.
pub async fn bounded_ids(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Err(err) = check_request(req.path(), req.query_string()) {
        return Ok(req.error_response(err).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_and_query_values_are_bounded() {
        assert!(check_request("/stripe/customers/cus_123", "page=1&records=20").is_ok());
        assert!(check_request("/stripe/customers/user%40example.com", "").is_ok());
        let long = "a".repeat(256);
        for (path, query) in [
            ("/stripe/customers/abc%00def", ""),
            (&*format!("/stripe/customers/{long}"), ""),
            ("/stripe/customers/%ff%fe", ""),
            ("/stripe/subscriptions", "customer_id=a%00b"),
        ] {
            assert!(check_request(path, query).is_err(), "{path}?{query}");
        }
        assert!(check_request(&format!("/stripe/customers/{}", "a".repeat(255)), "").is_ok());
    }
}
