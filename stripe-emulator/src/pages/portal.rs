//! The hosted billing portal page at `{base}/p/session/...`: a minimal page that names the
//! customer and links to the session's `return_url`, so a browser walk-through of the flow
//! works offline.

use actix_web::HttpResponse;

use crate::error::ApiError;
use crate::http::respond_error;
use crate::state::{Emulator, PortalPage};
use crate::text::escape_html;

/// `GET {base}/p/session/:secret` (`path` is the whole path).
pub fn portal_page(
    emulator: &Emulator,
    secret: &str,
    path: &str,
    request_id: &str,
) -> HttpResponse {
    match emulator.portal_page(secret) {
        Some(page) => HttpResponse::Ok()
            .insert_header(("Request-Id", request_id))
            .content_type("text/html; charset=utf-8")
            .body(render_page(&page)),
        None => respond_error(&ApiError::unrecognized_url("GET", path), request_id),
    }
}

/// The HTML of a hosted portal page.
pub fn render_page(page: &PortalPage) -> String {
    let back = match &page.return_url {
        Some(url) => format!(
            "<p><a id=\"return\" href=\"{0}\">Return to {0}</a></p>",
            escape_html(url)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Billing portal (Stripe emulator)</title></head>\
         <body><h1>Billing portal</h1><p>Stripe emulator stand-in for session <code>{}</code> of customer \
         <code>{}</code>.</p>{back}</body></html>",
        escape_html(&page.session),
        escape_html(&page.customer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape() {
        let page = PortalPage {
            session: "bps_1".into(),
            customer: "cus_<x>".into(),
            return_url: Some("https://e.com/?a=1&b=\"2\"".into()),
        };
        let html = render_page(&page);
        assert!(html.contains("cus_&lt;x&gt;"));
        assert!(html.contains("a=1&amp;b=&quot;2&quot;"));
    }
}
