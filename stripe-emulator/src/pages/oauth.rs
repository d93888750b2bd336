//! The hosted authorize pages of Connect and Stripe Apps (no key needed; the client id
//! names the platform key):
//! - `GET {base}/connect/oauth/authorize?response_type=code&client_id=ca_...&scope=
//!   read_write&state=...&redirect_uri=...` (Connect);
//! - `GET {base}/marketplace/oauth/v2/authorize?client_id=...&redirect_uri=...&state=...`
//!   (an Apps install link);
//! - `GET {base}/marketplace/install?client_id=...&redirect_uri=...` (an install started on
//!   Stripe's side: no `state` of ours).
//!
//! Each shows an Approve / Deny page whose buttons `POST` the same fields back to the same
//! path. Test flags in the query act at once: `emulator_approve=1`, `emulator_deny=1`,
//! `emulator_account=acct_...` (the account that approves; default a fresh `acct_` id).
//! Approval redirects `302` to `redirect_uri` with `code` (single use, valid
//! `code_lifetime_secs`, 300 by default) and `scope` + `state` (Connect) or `state` (when
//! given) + `user_id`, `account_id`, `stripe_user_id` and, when the app has a signing
//! secret, `install_signature` (Apps). Denial redirects with `error=access_denied`,
//! `error_description` and `state`. Every other problem (unknown client id, bad
//! `response_type` or `scope`, a `redirect_uri` not allowed) is a 400 HTML page, as Stripe
//! shows such errors itself.

use std::collections::HashMap;

use actix_web::HttpResponse;

use crate::delivery::signature_header;
use crate::http::html_response;
use crate::ids;
use crate::oauth::{is_account_id, new_account_id};
use crate::state::Emulator;
use crate::state::oauth::{Client, ClientKind};
use crate::text::{escape_html, is_url};

/// Path prefix of the Connect host (`stripe_connect_base = {emulator}/connect`).
pub const CONNECT_PREFIX: &str = "/connect";
/// Path prefix of the Marketplace host (`stripe_marketplace_base = {emulator}/marketplace`).
pub const MARKETPLACE_PREFIX: &str = "/marketplace";
/// The Connect authorize page.
pub const CONNECT_AUTHORIZE: &str = "/connect/oauth/authorize";
/// The Apps install link page.
pub const APP_AUTHORIZE: &str = "/marketplace/oauth/v2/authorize";
/// The Apps install started from the Marketplace.
pub const APP_INSTALL: &str = "/marketplace/install";

/// Which authorize page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Connect,
    AppLink,
    AppInstall,
}

impl Flow {
    /// The flow served at `path`, if any.
    pub fn at(path: &str) -> Option<Flow> {
        match path {
            CONNECT_AUTHORIZE => Some(Flow::Connect),
            APP_AUTHORIZE => Some(Flow::AppLink),
            APP_INSTALL => Some(Flow::AppInstall),
            _ => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Flow::Connect => CONNECT_AUTHORIZE,
            Flow::AppLink => APP_AUTHORIZE,
            Flow::AppInstall => APP_INSTALL,
        }
    }

    fn kind(self) -> ClientKind {
        match self {
            Flow::Connect => ClientKind::Connect,
            Flow::AppLink | Flow::AppInstall => ClientKind::App,
        }
    }
}

/// The request's fields: the query (GET) or the form body (POST); the first value of a name
/// wins.
fn fields(source: &[u8]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (key, value) in form_urlencoded::parse(source) {
        map.entry(key.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    map
}

fn error_page(message: &str, request_id: &str) -> HttpResponse {
    html_response(
        400,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Error (Stripe emulator)</title></head>\
             <body><h1>Something went wrong</h1><p id=\"error\">{}</p></body></html>",
            escape_html(message)
        ),
        request_id,
    )
}

fn redirect(location: &str, request_id: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", location))
        .insert_header(("Request-Id", request_id))
        .finish()
}

/// `uri` with `pairs` appended to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let (base, fragment) = match uri.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (uri, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    match fragment {
        Some(fragment) => format!("{base}{sep}{query}#{fragment}"),
        None => format!("{base}{sep}{query}"),
    }
}

/// The compact JSON Stripe signs for `install_signature`: `{"state","user_id",
/// "account_id"}` in that order; `state` is `null` when the install carried none.
pub fn install_payload(state: Option<&str>, user_id: &str, account_id: &str) -> String {
    let text = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let state = state.map_or_else(|| "null".to_owned(), text);
    format!(
        "{{\"state\":{state},\"user_id\":{},\"account_id\":{}}}",
        text(user_id),
        text(account_id)
    )
}

/// What the page checked: the client, where to send the user back, the scope.
struct Checked {
    client_id: String,
    client: Client,
    redirect_uri: String,
    scope: String,
}

fn check(emulator: &Emulator, flow: Flow, f: &HashMap<String, String>) -> Result<Checked, String> {
    let get = |name: &str| f.get(name).map(String::as_str).filter(|s| !s.is_empty());
    let client_id = get("client_id").ok_or("No client_id was provided.")?;
    let client = emulator
        .oauth()
        .client(client_id)
        .filter(|c| c.kind == flow.kind())
        .cloned()
        .ok_or_else(|| format!("Invalid client_id: no application matches {client_id}."))?;
    let scope = if flow == Flow::Connect {
        match get("response_type") {
            Some("code") => {}
            Some(other) => return Err(format!("Invalid response_type: {other}. Use code.")),
            None => return Err("No response_type was provided: use response_type=code.".into()),
        }
        match get("scope").unwrap_or("read_only") {
            scope @ ("read_write" | "read_only") => scope.to_owned(),
            other => {
                return Err(format!(
                    "Invalid scope: {other}. Use read_write or read_only."
                ));
            }
        }
    } else {
        "stripe_apps".to_owned()
    };
    let redirect_uri = match (get("redirect_uri"), client.redirect_uris.first()) {
        (Some(uri), _) if !is_url(uri) => return Err(format!("Invalid redirect_uri: {uri}.")),
        (Some(uri), _)
            if !client.redirect_uris.is_empty()
                && !client.redirect_uris.iter().any(|u| u == uri) =>
        {
            return Err(format!(
                "Invalid redirect_uri: {uri} is not one of the application's redirect URIs."
            ));
        }
        (Some(uri), _) => uri.to_owned(),
        (None, Some(first)) => first.clone(),
        (None, None) => return Err("No redirect_uri was provided.".into()),
    };
    Ok(Checked {
        client_id: client_id.to_owned(),
        client,
        redirect_uri,
        scope,
    })
}

/// Answers a request to an authorize page (`method` GET or POST; `query` for GET, the
/// form body for POST).
pub fn authorize_page(
    emulator: &Emulator,
    flow: Flow,
    method: &str,
    source: &[u8],
    request_id: &str,
) -> HttpResponse {
    let f = fields(source);
    let checked = match check(emulator, flow, &f) {
        Ok(checked) => checked,
        Err(message) => return error_page(&message, request_id),
    };
    let get = |name: &str| f.get(name).map(String::as_str).filter(|s| !s.is_empty());
    let decision = if method == "POST" {
        get("decision")
    } else if get("emulator_approve") == Some("1") {
        Some("approve")
    } else if get("emulator_deny") == Some("1") {
        Some("deny")
    } else {
        None
    };
    let state = get("state");
    match decision {
        None => html_response(200, render(flow, &checked, &f), request_id),
        Some("deny") => {
            let mut pairs = vec![
                ("error", "access_denied"),
                ("error_description", "The user denied your request"),
            ];
            if let Some(state) = state {
                pairs.push(("state", state));
            }
            redirect(&with_query(&checked.redirect_uri, &pairs), request_id)
        }
        Some("approve") => {
            let account = match get("emulator_account").or_else(|| get("account")) {
                Some(account) if is_account_id(account) => account.to_owned(),
                Some(account) => {
                    return error_page(&format!("Invalid account id: {account}."), request_id);
                }
                None => new_account_id(),
            };
            approve(emulator, flow, &checked, &account, state, request_id)
        }
        Some(other) => error_page(&format!("Unknown decision: {other}."), request_id),
    }
}

fn approve(
    emulator: &Emulator,
    flow: Flow,
    checked: &Checked,
    account: &str,
    state: Option<&str>,
    request_id: &str,
) -> HttpResponse {
    let now = ids::now();
    let lifetime = emulator
        .key_state(&checked.client.key)
        .config
        .code_lifetime_secs();
    let expires_at = now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
    let code = emulator.oauth().issue_code(
        &checked.client_id,
        &checked.client,
        account,
        &checked.scope,
        expires_at,
    );
    let location = if flow == Flow::Connect {
        let mut pairs = vec![("code", code.as_str()), ("scope", checked.scope.as_str())];
        if let Some(state) = state {
            pairs.push(("state", state));
        }
        with_query(&checked.redirect_uri, &pairs)
    } else {
        let user_id = ids::short_id("usr");
        let signature = checked.client.signing_secret.as_ref().map(|secret| {
            signature_header(
                now,
                &install_payload(state, &user_id, account),
                std::slice::from_ref(secret),
            )
        });
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = state {
            pairs.push(("state", state));
        }
        pairs.extend([
            ("user_id", user_id.as_str()),
            ("account_id", account),
            ("stripe_user_id", account),
        ]);
        if let Some(signature) = &signature {
            pairs.push(("install_signature", signature));
        }
        with_query(&checked.redirect_uri, &pairs)
    };
    redirect(&location, request_id)
}

/// The Approve / Deny page.
fn render(flow: Flow, checked: &Checked, f: &HashMap<String, String>) -> String {
    let esc = escape_html;
    let mut names: Vec<&String> = f
        .keys()
        .filter(|k| !k.starts_with("emulator_") && *k != "decision" && *k != "account")
        .collect();
    names.sort();
    let hidden: String = names
        .iter()
        .map(|k| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(f.get(*k).map(String::as_str).unwrap_or_default())
            )
        })
        .collect();
    let account = f
        .get("emulator_account")
        .map(String::as_str)
        .unwrap_or_default();
    let (title, what) = match flow {
        Flow::Connect => (
            "Connect your Stripe account",
            format!(
                "The platform <code>{}</code> asks for <code>{}</code> access to your account.",
                esc(&checked.client_id),
                esc(&checked.scope)
            ),
        ),
        Flow::AppLink | Flow::AppInstall => (
            "Install app",
            format!(
                "Install the app <code>{}</code> on your account.",
                esc(&checked.client_id)
            ),
        ),
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} (Stripe emulator)</title></head>\
         <body><h1>{title}</h1><p>{what}</p><p>Afterwards you return to <code>{}</code>.</p>\
         <form method=\"post\" action=\"{}\">{hidden}\
         <label>Account <input name=\"account\" value=\"{}\" placeholder=\"acct_... (empty: a new account)\"></label> \
         <button type=\"submit\" name=\"decision\" value=\"approve\" id=\"approve\">Approve</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></form></body></html>",
        esc(&checked.redirect_uri),
        flow.path(),
        esc(account),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_and_queries() {
        assert_eq!(
            install_payload(Some("s\"1"), "usr_1", "acct_1"),
            r#"{"state":"s\"1","user_id":"usr_1","account_id":"acct_1"}"#
        );
        assert_eq!(
            install_payload(None, "usr_1", "acct_1"),
            r#"{"state":null,"user_id":"usr_1","account_id":"acct_1"}"#
        );
        assert_eq!(
            with_query("https://e.com/cb", &[("code", "ac_1"), ("state", "a b")]),
            "https://e.com/cb?code=ac_1&state=a+b"
        );
        assert_eq!(
            with_query("https://e.com/cb?x=1#f", &[("code", "ac_1")]),
            "https://e.com/cb?x=1&code=ac_1#f"
        );
        assert_eq!(Flow::at("/connect/oauth/authorize"), Some(Flow::Connect));
        assert_eq!(Flow::at("/connect/oauth/token"), None);
    }
}
