//! Wire-level behaviour: headers, auth, form nesting, error shapes, list parameters,
//! idempotency, the `/_emulator` endpoints, shutdown, and that every object kind the
//! emulator emits deserializes into the corresponding async-stripe type.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, Reply, start, test_key};
use reqwest::Method;

/// Parses an error body the way async-stripe does (miniserde into `stripe_shared::Error`).
fn parse_error(reply: &Reply) -> stripe_shared::ApiErrors {
    let error: stripe_shared::Error = miniserde::json::from_str(&reply.text)
        .unwrap_or_else(|_| panic!("not a Stripe error: {}", reply.text));
    *error.error
}

fn assert_stripe_headers(reply: &Reply) {
    let request_id = reply.header("request-id").expect("Request-Id header");
    assert!(
        request_id.starts_with("req_") && request_id.len() == 18,
        "{request_id}"
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[test]
fn api_version_matches_async_stripe() {
    assert_eq!(
        stripe_emulator::API_VERSION,
        stripe_shared::version::VERSION.as_str()
    );
}

#[tokio::test]
async fn every_response_has_request_id_and_json() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let ok = raw.post("/v1/customers", "email=h%40example.com").await;
    assert_eq!(ok.status, 200);
    assert_stripe_headers(&ok);
    assert_eq!(
        ok.header("stripe-version"),
        Some(stripe_emulator::API_VERSION)
    );

    let unknown = raw.get("/v1/nothing_here").await;
    assert_eq!(unknown.status, 404);
    assert_stripe_headers(&unknown);
    let error = parse_error(&unknown);
    assert_eq!(
        error.message.as_deref(),
        Some(
            "Unrecognized request URL (GET: /v1/nothing_here). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        )
    );
    let wrong_method = raw.send(raw.request(Method::PUT, "/v1/customers")).await;
    assert_eq!(wrong_method.status, 404);
    assert_stripe_headers(&wrong_method);

    let anonymous = Raw {
        key: String::new(),
        ..Raw::new(&emulator, "")
    };
    let unauthenticated = anonymous
        .send(
            anonymous
                .http
                .get(format!("{}/v1/customers", anonymous.base)),
        )
        .await;
    assert_eq!(unauthenticated.status, 401);
    assert_stripe_headers(&unauthenticated);
    let error = parse_error(&unauthenticated);
    assert_eq!(
        error.type_,
        stripe_shared::ApiErrorsType::InvalidRequestError
    );
    assert!(
        error
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("You did not provide an API key.")
    );
    let ids: std::collections::HashSet<_> = [&ok, &unknown, &unauthenticated]
        .iter()
        .map(|r| r.header("request-id").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "request ids are unique");
    emulator.stop().await;
}

#[tokio::test]
async fn keys_are_checked_and_basic_auth_works() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    let created = raw.post("/v1/customers", "name=Basic").await;
    for bad in ["pk_test_123", "sk_test_", "whatever"] {
        let reply = Raw::new(&emulator, bad).get("/v1/customers").await;
        assert_eq!(reply.status, 401, "{bad}");
        assert_eq!(reply.json["error"]["type"], "invalid_request_error");
    }
    for good in ["sk_live_abc", "rk_test_abc"] {
        assert_eq!(
            Raw::new(&emulator, good).get("/v1/customers").await.status,
            200,
            "{good}"
        );
    }
    let live = Raw::new(&emulator, "sk_live_abc")
        .post("/v1/customers", "")
        .await;
    assert_eq!(live.json["livemode"], true);

    let basic = raw
        .send(
            raw.http
                .get(format!("{}/v1/customers", raw.base))
                .basic_auth(&key, Some("")),
        )
        .await;
    assert_eq!(basic.status, 200);
    assert_eq!(basic.json["data"][0]["id"], created.json["id"]);
    emulator.stop().await;
}

#[tokio::test]
async fn form_nesting_and_unknown_parameters() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let reply = raw
        .post(
            "/v1/customers",
            "email=nest%40example.com&metadata[plan]=pro&metadata%5Bseats%5D=3&metadata[with+space]=a+b\
             &payment_method=pm_card_visa&expand[0]=invoice_settings.default_payment_method\
             &address[line1]=1+Main+St&address[country]=US&preferred_locales[0]=en&preferred_locales[1]=fr",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let c = &reply.json;
    assert_eq!(c["object"], "customer");
    assert_eq!(c["email"], "nest@example.com");
    assert_eq!(
        c["metadata"],
        serde_json::json!({"plan": "pro", "seats": "3", "with space": "a b"})
    );
    assert_eq!(c["address"]["line1"], "1 Main St");
    assert_eq!(c["address"]["country"], "US");
    assert!(c["address"]["city"].is_null());
    assert_eq!(c["preferred_locales"], serde_json::json!(["en", "fr"]));
    assert_eq!(
        c["invoice_settings"]["default_payment_method"]["object"],
        "payment_method"
    );
    assert_eq!(
        c["invoice_settings"]["default_payment_method"]["card"]["last4"],
        "4242"
    );

    // Parameters the endpoint does not take are refused as Stripe refuses them, nested ones
    // too, and nothing is created.
    let before = raw.get("/v1/customers?limit=100").await.json["data"]
        .as_array()
        .map(Vec::len);
    let unknown = raw
        .post("/v1/customers", "email=x%40example.com&no_such_param=1")
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    let error = parse_error(&unknown);
    assert_eq!(
        error.code,
        Some(stripe_shared::ApiErrorsCode::ParameterUnknown)
    );
    assert_eq!(error.param.as_deref(), Some("no_such_param"));
    assert_eq!(
        error.message.as_deref(),
        Some("Received unknown parameter: no_such_param")
    );
    let nested = raw
        .post(
            "/v1/customers",
            "address[line1]=1+Main+St&address[lin2]=x&nested[unknown][0]=x",
        )
        .await;
    assert_eq!(nested.status, 400, "{}", nested.text);
    assert_eq!(nested.json["error"]["param"], "address[lin2]");
    assert_eq!(
        nested.json["error"]["message"],
        "Received unknown parameters: address[lin2], nested"
    );
    let after = raw.get("/v1/customers?limit=100").await.json["data"]
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after, "a refused request creates nothing");

    let conflict = raw.post("/v1/customers", "metadata=x&metadata[a]=b").await;
    assert_eq!(conflict.status, 400);
    assert_eq!(conflict.json["error"]["param"], "metadata");

    let bad_expand = raw.post("/v1/customers", "expand[0]=nonsense").await;
    assert_eq!(bad_expand.status, 400);
    assert_eq!(bad_expand.json["error"]["param"], "expand");

    let bad_integer = raw.post("/v1/customers", "balance=lots").await;
    assert_eq!(bad_integer.status, 400);
    let error = parse_error(&bad_integer);
    assert_eq!(
        error.code,
        Some(stripe_shared::ApiErrorsCode::ParameterInvalidInteger)
    );
    assert_eq!(error.param.as_deref(), Some("balance"));

    let too_much_metadata: String = (0..51).map(|i| format!("metadata[k{i}]=v&")).collect();
    let reply = raw.post("/v1/customers", &too_much_metadata).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["param"], "metadata");

    let huge = "a=".to_owned() + &"x".repeat(2 * 1024 * 1024);
    let reply = raw.post("/v1/customers", &huge).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json["error"]["type"], "invalid_request_error");

    let garbage = raw
        .post("/v1/customers", "%%%&&==&[]=&a[=1&%FF%FE=%C3")
        .await;
    assert_eq!(
        garbage.status, 400,
        "malformed names are unknown parameters: {}",
        garbage.text
    );
    assert_eq!(garbage.json["error"]["code"], "parameter_unknown");
    emulator.stop().await;
}

#[tokio::test]
async fn update_semantics() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let id = raw
        .post(
            "/v1/customers",
            "name=N&description=D&metadata[a]=1&metadata[b]=2",
        )
        .await
        .json["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = raw
        .post(
            &format!("/v1/customers/{id}"),
            "description=&metadata[a]=&metadata[c]=3",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.json["description"].is_null(), "empty string unsets");
    assert_eq!(reply.json["name"], "N");
    assert_eq!(
        reply.json["metadata"],
        serde_json::json!({"b": "2", "c": "3"})
    );
    let reply = raw.post(&format!("/v1/customers/{id}"), "metadata=").await;
    assert_eq!(reply.json["metadata"], serde_json::json!({}));

    let reply = raw
        .post(
            &format!("/v1/customers/{id}"),
            "invoice_settings[default_payment_method]=pm_nope",
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["code"], "resource_missing");
    assert_eq!(
        reply.json["error"]["param"],
        "invoice_settings[default_payment_method]"
    );
    // A payment method of another customer cannot be the default.
    let other = raw
        .post("/v1/customers", "payment_method=pm_card_visa")
        .await;
    let others_pm = other.json["invoice_settings"]["default_payment_method"]
        .as_str()
        .expect("pm")
        .to_owned();
    let reply = raw
        .post(
            &format!("/v1/customers/{id}"),
            &format!("invoice_settings[default_payment_method]={others_pm}"),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("must be attached to the customer")
    );

    let missing = raw.post("/v1/customers/cus_nope", "name=x").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"]["param"], "id");
    emulator.stop().await;
}

#[tokio::test]
async fn deleted_customer_shapes() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let id = raw.post("/v1/customers", "").await.json["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deleted = raw.delete(&format!("/v1/customers/{id}")).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(
        deleted.json,
        serde_json::json!({"id": id, "object": "customer", "deleted": true})
    );
    let fetched = raw.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json, deleted.json);
    let portal = raw
        .post("/v1/billing_portal/sessions", &format!("customer={id}"))
        .await;
    assert_eq!(portal.status, 400);
    assert_eq!(portal.json["error"]["code"], "resource_missing");
    emulator.stop().await;
}

#[tokio::test]
async fn list_parameter_errors() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let id = raw.post("/v1/customers", "").await.json["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (query, status, code, param) in [
        ("limit=0", 400, "parameter_invalid_integer", "limit"),
        ("limit=101", 400, "parameter_invalid_integer", "limit"),
        ("limit=abc", 400, "parameter_invalid_integer", "limit"),
        (
            "starting_after=cus_nope",
            404,
            "resource_missing",
            "starting_after",
        ),
        (
            "ending_before=cus_nope",
            404,
            "resource_missing",
            "ending_before",
        ),
    ] {
        let reply = raw.get(&format!("/v1/customers?{query}")).await;
        assert_eq!(reply.status, status, "{query}");
        let error = parse_error(&reply);
        assert_eq!(
            error
                .code
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .as_deref(),
            Some(code),
            "{query}"
        );
        assert_eq!(error.param.as_deref(), Some(param), "{query}");
    }
    let both = raw
        .get(&format!(
            "/v1/customers?starting_after={id}&ending_before={id}"
        ))
        .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.json["error"]["type"], "invalid_request_error");
    let unknown = raw.get("/v1/customers?limit=100&unknown=1").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json["error"]["param"], "unknown");
    let ok = raw.get("/v1/customers?limit=100").await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json["object"], "list");
    assert_eq!(ok.json["has_more"], false);
    emulator.stop().await;
}

#[tokio::test]
async fn idempotency_on_the_wire() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let first = raw
        .post_idempotent(
            "/v1/customers",
            "email=i%40example.com&metadata[x]=1",
            "key-1",
        )
        .await;
    assert_eq!(first.status, 200);
    assert!(first.header("idempotent-replayed").is_none());
    assert_eq!(first.header("idempotency-key"), Some("key-1"));
    // Same parameters in another order: a replay, byte for byte.
    let replay = raw
        .post_idempotent(
            "/v1/customers",
            "metadata[x]=1&email=i%40example.com",
            "key-1",
        )
        .await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.text, first.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        replay.header("original-request"),
        first.header("request-id")
    );
    assert_ne!(replay.header("request-id"), first.header("request-id"));

    let conflict = raw
        .post_idempotent("/v1/customers", "email=j%40example.com", "key-1")
        .await;
    assert_eq!(conflict.status, 400);
    let error = parse_error(&conflict);
    assert_eq!(error.type_, stripe_shared::ApiErrorsType::IdempotencyError);
    let other_endpoint = raw
        .post_idempotent("/v1/billing_portal/sessions", "customer=cus_other", "key-1")
        .await;
    assert_eq!(other_endpoint.status, 400);
    assert_eq!(other_endpoint.json["error"]["type"], "idempotency_error");

    // A request rejected by validation is not saved: the corrected retry goes through.
    let rejected = raw
        .post_idempotent("/v1/billing_portal/sessions", "", "key-2")
        .await;
    assert_eq!(rejected.status, 400);
    assert_eq!(rejected.json["error"]["code"], "parameter_missing");
    let customer = first.json["id"].as_str().expect("id");
    let accepted = raw
        .post_idempotent(
            "/v1/billing_portal/sessions",
            &format!("customer={customer}"),
            "key-2",
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);

    // Keys are per secret key.
    let other = Raw::new(&emulator, &test_key());
    let fresh = other
        .post_idempotent("/v1/customers", "email=j%40example.com", "key-1")
        .await;
    assert_eq!(fresh.status, 200);
    assert_ne!(fresh.json["id"], first.json["id"]);

    let too_long = raw
        .post_idempotent("/v1/customers", "", &"k".repeat(256))
        .await;
    assert_eq!(too_long.status, 400);
    // GET ignores the header.
    let get = raw
        .send(
            raw.request(Method::GET, "/v1/customers")
                .header("idempotency-key", "key-1"),
        )
        .await;
    assert_eq!(get.status, 200);
    emulator.stop().await;
}

#[tokio::test]
async fn payment_method_token_rules() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    for (token, brand, last4) in [
        ("pm_card_visa", "visa", "4242"),
        ("pm_card_mastercard", "mastercard", "4444"),
        ("pm_card_chargeDeclined", "visa", "0002"),
        ("pm_card_declined", "visa", "0002"),
    ] {
        let c = raw
            .post(
                "/v1/customers",
                &format!("payment_method={token}&expand[]=invoice_settings.default_payment_method"),
            )
            .await;
        assert_eq!(c.status, 200, "{token}: {}", c.text);
        let pm = &c.json["invoice_settings"]["default_payment_method"];
        assert_eq!(pm["card"]["brand"], brand, "{token}");
        assert_eq!(pm["card"]["last4"], last4, "{token}");
        assert_eq!(pm["customer"], c.json["id"], "{token}");
    }
    let reply = raw.post("/v1/customers", "payment_method=tok_visa").await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json["error"]["message"],
        "No such PaymentMethod: 'tok_visa'"
    );
    assert_eq!(reply.json["error"]["param"], "payment_method");

    // An existing, unattached payment method: detached ones cannot be reused.
    let c = raw
        .post("/v1/customers", "payment_method=pm_card_visa")
        .await;
    let pm = c.json["invoice_settings"]["default_payment_method"]
        .as_str()
        .expect("pm")
        .to_owned();
    let detached = raw
        .post(&format!("/v1/payment_methods/{pm}/detach"), "")
        .await;
    assert!(detached.json["customer"].is_null());
    let after = raw
        .get(&format!(
            "/v1/customers/{}",
            c.json["id"].as_str().expect("id")
        ))
        .await;
    assert!(
        after.json["invoice_settings"]["default_payment_method"].is_null(),
        "detaching unsets the default"
    );
    let reuse = raw
        .post("/v1/customers", &format!("payment_method={pm}"))
        .await;
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.json["error"]["param"], "payment_method");

    let missing = raw.get("/v1/payment_methods/pm_nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json["error"]["message"],
        "No such PaymentMethod: 'pm_nope'"
    );
    let needs_customer = raw
        .post("/v1/payment_methods/pm_card_visa/attach", "")
        .await;
    assert_eq!(needs_customer.status, 400);
    assert_eq!(needs_customer.json["error"]["code"], "parameter_missing");

    let updated = raw
        .post(
            &format!("/v1/payment_methods/{pm}"),
            "metadata[k]=v&billing_details[name]=Ann&card[exp_month]=3",
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["metadata"]["k"], "v");
    assert_eq!(updated.json["billing_details"]["name"], "Ann");
    assert_eq!(updated.json["card"]["exp_month"], 3);
    let typed = raw.get("/v1/payment_methods?type=card&limit=2").await;
    assert_eq!(typed.json["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(typed.json["has_more"], true);
    let none = raw.get("/v1/payment_methods?type=sepa_debit").await;
    assert_eq!(none.json["data"].as_array().map(Vec::len), Some(0));
    emulator.stop().await;
}

#[tokio::test]
async fn emulator_endpoints() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    let health = reqwest::get(format!("{}/_emulator/health", raw.base))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    raw.post(
        "/v1/customers",
        "email=log%40example.com&metadata[plan]=pro&expand[0]=invoice_settings",
    )
    .await;
    raw.get("/v1/customers?limit=5").await;
    let log = raw.get("/_emulator/requests").await;
    assert_eq!(log.status, 200);
    let data = log.json["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), 2, "{}", log.text);
    assert_eq!(data[0]["method"], "POST");
    assert_eq!(data[0]["path"], "/v1/customers");
    assert_eq!(data[0]["params"]["email"], "log@example.com");
    assert_eq!(data[0]["params"]["metadata"]["plan"], "pro");
    assert_eq!(
        data[0]["params"]["expand"],
        serde_json::json!(["invoice_settings"])
    );
    assert_eq!(data[0]["status"], 200);
    assert!(data[0]["idempotency_key"].is_null());
    assert_eq!(data[1]["method"], "GET");
    assert_eq!(data[1]["params"]["limit"], "5");
    assert_eq!(data[1]["query"], "limit=5");

    // Another key has its own log.
    let other = Raw::new(&emulator, &test_key());
    assert_eq!(
        other.get("/_emulator/requests").await.json["data"],
        serde_json::json!([])
    );

    let cleared = raw.delete("/_emulator/data").await;
    assert_eq!(cleared.status, 200);
    assert_eq!(
        raw.get("/v1/customers").await.json["data"],
        serde_json::json!([])
    );
    let log = raw.get("/_emulator/requests").await;
    assert_eq!(
        log.json["data"].as_array().map(Vec::len),
        Some(1),
        "only the list after the reset"
    );
    raw.delete("/_emulator/requests").await;
    assert_eq!(
        raw.get("/_emulator/requests").await.json["data"],
        serde_json::json!([])
    );

    let config = raw.get("/_emulator/config").await;
    assert_eq!(config.json["latency_ms"], 0);
    raw.set_latency(150).await;
    let started = Instant::now();
    raw.get("/v1/customers").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    let bad = raw
        .send(
            raw.request(Method::POST, "/_emulator/config")
                .header("content-type", "application/json")
                .body("{\"latency_ms\": \"slow\"}"),
        )
        .await;
    assert_eq!(bad.status, 400);
    raw.set_latency(0).await;

    let anonymous = reqwest::Client::new()
        .delete(format!("{}/_emulator/data", raw.base))
        .send()
        .await
        .expect("reply");
    assert_eq!(anonymous.status(), 401);
    let unknown = raw.get("/_emulator/nothing").await;
    assert_eq!(unknown.status, 404);
    emulator.stop().await;
}

#[tokio::test]
async fn emitted_objects_deserialize_into_async_stripe_types() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let customer = raw.post("/v1/customers", "email=t%40example.com&name=T&phone=1&description=d&metadata[a]=b&payment_method=pm_card_visa&address[city]=X&preferred_locales[0]=en").await;
    let parsed: stripe_shared::Customer =
        miniserde::json::from_str(&customer.text).expect("customer");
    assert_eq!(parsed.email.as_deref(), Some("t@example.com"));
    let id = parsed.id.to_string();
    let pm_id = customer.json["invoice_settings"]["default_payment_method"]
        .as_str()
        .expect("pm")
        .to_owned();

    let pm = raw.get(&format!("/v1/payment_methods/{pm_id}")).await;
    let parsed: stripe_shared::PaymentMethod =
        miniserde::json::from_str(&pm.text).expect("payment method");
    assert_eq!(parsed.card.map(|c| c.last4), Some("4242".to_owned()));
    for token in stripe_emulator::resources::payment_methods::TEST_CARDS {
        let attached = raw
            .post(
                &format!("/v1/payment_methods/{}/attach", token.token),
                &format!("customer={id}"),
            )
            .await;
        let parsed: stripe_shared::PaymentMethod = miniserde::json::from_str(&attached.text)
            .unwrap_or_else(|_| panic!("{}", attached.text));
        assert_eq!(parsed.card.map(|c| c.brand), Some(token.brand.to_owned()));
    }

    let list = raw.get("/v1/customers").await;
    let parsed: stripe_types::List<stripe_shared::Customer> =
        miniserde::json::from_str(&list.text).expect("list");
    assert_eq!(parsed.data.len(), 1);
    let pms = raw
        .get(&format!(
            "/v1/customers/{id}/payment_methods?expand[]=data.customer"
        ))
        .await;
    let parsed: stripe_types::List<stripe_shared::PaymentMethod> =
        miniserde::json::from_str(&pms.text).expect("pm list");
    assert_eq!(
        parsed.data.len(),
        1 + stripe_emulator::resources::payment_methods::TEST_CARDS.len()
    );
    assert!(
        parsed
            .data
            .iter()
            .all(|pm| matches!(pm.customer, Some(stripe_types::Expandable::Object(_))))
    );

    let session = raw
        .post(
            "/v1/billing_portal/sessions",
            &format!(
                "customer={id}&return_url=https%3A%2F%2Fexample.com&locale=fr&on_behalf_of=acct_1"
            ),
        )
        .await;
    let parsed: stripe_billing::BillingPortalSession =
        miniserde::json::from_str(&session.text).expect("session");
    assert_eq!(
        parsed.locale.map(|l| l.as_str().to_owned()).as_deref(),
        Some("fr")
    );
    assert_eq!(parsed.on_behalf_of.as_deref(), Some("acct_1"));

    let deleted = raw.delete(&format!("/v1/customers/{id}")).await;
    let parsed: stripe_shared::DeletedCustomer =
        miniserde::json::from_str(&deleted.text).expect("deleted");
    assert_eq!(parsed.id.as_str(), id);

    // And errors of every type in use.
    for reply in [
        raw.get("/v1/customers/cus_x").await,
        raw.post("/v1/billing_portal/sessions", "").await,
        raw.get("/v1/customers?limit=0").await,
        Raw::new(&emulator, "nope").get("/v1/customers").await,
    ] {
        let error = parse_error(&reply);
        assert!(error.message.is_some());
    }
    emulator.stop().await;
}

#[tokio::test]
async fn stop_refuses_connections() {
    let emulator = start().await;
    let port = emulator.port();
    assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
    assert!(!emulator.base_url().ends_with('/'));
    // A pooled keep-alive connection must not hold the shutdown up.
    let raw = Raw::new(&emulator, &test_key());
    assert_eq!(raw.get("/v1/customers").await.status, 200);
    let started = Instant::now();
    emulator.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        started.elapsed()
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_requests() {
    let emulator = start().await;
    let base = emulator.base_url();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let http = http.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let key = test_key();
            let mut ok = 0;
            for i in 0..125 {
                let request = if i % 2 == 0 {
                    http.post(format!("{base}/v1/customers"))
                        .body(format!("email=w{worker}n{i}%40example.com"))
                } else {
                    http.get(format!("{base}/v1/customers?limit=3"))
                };
                let reply = request.bearer_auth(&key).send().await.expect("reply");
                if reply.status() == 200 {
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("task");
    }
    let elapsed = started.elapsed();
    assert_eq!(total, 1000);
    println!(
        "1000 requests in {elapsed:?} ({:.0} req/s)",
        1000.0 / elapsed.as_secs_f64()
    );
    emulator.stop().await;
}

#[test]
fn deserialization_checks_are_strict() {
    // Guards the shape checks above: async-stripe rejects objects missing required fields,
    // so a passing parse means the emulator's object really has Stripe's shape.
    assert!(miniserde::json::from_str::<stripe_shared::Customer>("{}").is_err());
    assert!(
        miniserde::json::from_str::<stripe_shared::Customer>(
            r#"{"id":"cus_1","object":"customer"}"#
        )
        .is_err()
    );
}

#[tokio::test]
async fn billing_wire_shapes() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());

    // A decline: 402, card_error, no `param`, the intent and the failed charge ride along;
    // an idempotent retry replays it byte for byte.
    let body = "amount=1000&currency=usd&payment_method=pm_card_chargeDeclined\
                &allowed_payment_method_types[0]=card&confirm=true";
    let declined = raw
        .post_idempotent("/v1/payment_intents", body, "order-7")
        .await;
    assert_eq!(declined.status, 402, "{}", declined.text);
    let error = &declined.json["error"];
    assert_eq!(error["type"], "card_error");
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], "generic_decline");
    assert_eq!(error["message"], "Your card was declined.");
    assert!(error.get("param").is_none(), "{error}");
    assert_eq!(error["payment_intent"]["status"], "requires_payment_method");
    assert!(error["payment_intent"]["payment_method"].is_null());
    assert_eq!(
        error["payment_intent"]["last_payment_error"]["decline_code"],
        "generic_decline"
    );
    assert!(
        error["charge"]
            .as_str()
            .is_some_and(|c| c.starts_with("ch_"))
    );
    assert_eq!(error["payment_method"]["card"]["last4"], "0002");
    parse_error(&declined);
    let replay = raw
        .post_idempotent("/v1/payment_intents", body, "order-7")
        .await;
    assert_eq!(replay.status, 402);
    assert_eq!(replay.text, declined.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    let intents = raw.get("/v1/payment_intents").await;
    assert_eq!(intents.json["data"].as_array().map(Vec::len), Some(1));

    // Unknown references name the parameter as sent.
    let customer = raw.post("/v1/customers", "email=w%40example.com").await;
    let cus = customer.json["id"].as_str().expect("id").to_owned();
    for (path, form, param, message) in [
        (
            "/v1/subscriptions",
            format!("customer={cus}&items[0][price]=price_x"),
            "items[0][price]",
            "No such price: 'price_x'",
        ),
        (
            "/v1/subscriptions",
            "customer=cus_x&items[0][price]=price_x".to_owned(),
            "customer",
            "No such customer: 'cus_x'",
        ),
        (
            "/v1/checkout/sessions",
            "mode=payment&success_url=https%3A%2F%2Fe.com&line_items[0][price]=price_y&line_items[0][quantity]=1".to_owned(),
            "line_items[0][price]",
            "No such price: 'price_y'",
        ),
        (
            "/v1/payment_intents",
            "amount=500&currency=usd&customer=cus_z".to_owned(),
            "customer",
            "No such customer: 'cus_z'",
        ),
    ] {
        let reply = raw.post(path, &form).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        assert_eq!(reply.json["error"]["type"], "invalid_request_error");
        assert_eq!(reply.json["error"]["code"], "resource_missing");
        assert_eq!(reply.json["error"]["param"], param);
        assert_eq!(reply.json["error"]["message"], message);
        parse_error(&reply);
    }

    // `payments` and `confirmation_secret` are included only when expanded.
    let price = raw
        .post(
            "/v1/prices",
            "currency=usd&unit_amount=700&recurring[interval]=week&product_data[name]=Weekly",
        )
        .await;
    let price = price.json["id"].as_str().expect("price").to_owned();
    let sub = raw
        .post(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={price}&expand[0]=latest_invoice"),
        )
        .await;
    assert_eq!(sub.json["status"], "incomplete");
    let invoice = &sub.json["latest_invoice"];
    assert_eq!(invoice["object"], "invoice");
    assert!(invoice.get("payments").is_none());
    assert!(invoice.get("confirmation_secret").is_none());
    let id = invoice["id"].as_str().expect("invoice").to_owned();
    let expanded = raw
        .get(&format!(
            "/v1/invoices/{id}?expand[]=payments&expand[]=confirmation_secret"
        ))
        .await;
    assert_eq!(expanded.json["payments"]["data"][0]["status"], "open");
    assert!(
        expanded.json["confirmation_secret"]["client_secret"]
            .as_str()
            .is_some_and(|s| s.contains("_secret_"))
    );
    let parsed: stripe_shared::Invoice =
        miniserde::json::from_str(&expanded.text).expect("invoice");
    assert_eq!(parsed.amount_due, 700);
    let items = sub.json["items"]["data"][0].clone();
    assert!(items.get("current_period_end").is_some());
    assert!(sub.json.get("current_period_end").is_none());

    // Webhook endpoint secrets appear once.
    let created = raw
        .post(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fh.example.com&enabled_events[]=invoice.paid",
        )
        .await;
    assert!(
        created.json["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let id = created.json["id"].as_str().expect("we").to_owned();
    let fetched = raw.get(&format!("/v1/webhook_endpoints/{id}")).await;
    assert!(fetched.json.get("secret").is_none());
    let bad = raw
        .post(
            "/v1/webhook_endpoints",
            "url=https%3A%2F%2Fh.example.com&enabled_events[]=invoice.nope",
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["param"], "enabled_events");

    // The checkout test helper needs the key.
    let anonymous = reqwest::Client::new()
        .post(format!(
            "{}/_emulator/checkout/sessions/cs_test_x/complete",
            raw.base
        ))
        .send()
        .await
        .expect("reply");
    assert_eq!(anonymous.status(), 401);
    let unknown = raw
        .post("/_emulator/checkout/sessions/cs_test_x/complete", "")
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json["error"]["code"], "resource_missing");
    emulator.stop().await;
}

#[tokio::test]
async fn an_unknown_parameter_does_not_use_up_the_idempotency_key() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let typo = raw
        .post_idempotent("/v1/customers", "emial=a%40example.com", "key-1")
        .await;
    assert_eq!(typo.status, 400, "{}", typo.text);
    assert_eq!(typo.json["error"]["code"], "parameter_unknown");
    assert_eq!(typo.json["error"]["param"], "emial");
    // The corrected request under the same key runs (no idempotency_error), once.
    let fixed = raw
        .post_idempotent("/v1/customers", "email=a%40example.com", "key-1")
        .await;
    assert_eq!(fixed.status, 200, "{}", fixed.text);
    let replay = raw
        .post_idempotent("/v1/customers", "email=a%40example.com", "key-1")
        .await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.json["id"], fixed.json["id"]);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    emulator.stop().await;
}

#[tokio::test]
async fn stripe_version_is_the_pinned_one_or_a_clear_400() {
    let emulator = start().await;
    let raw = Raw::new(&emulator, &test_key());
    let with = |version: &str| {
        raw.request(reqwest::Method::GET, "/v1/customers")
            .header("stripe-version", version)
    };
    let pinned = raw.send(with(stripe_emulator::API_VERSION)).await;
    assert_eq!(pinned.status, 200, "{}", pinned.text);

    let invalid = raw.send(with("2020-99-99")).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json["error"]["type"], "invalid_request_error");
    assert_eq!(
        invalid.json["error"]["message"],
        "Invalid Stripe API version: 2020-99-99"
    );

    let older = raw
        .send(
            raw.request(reqwest::Method::POST, "/v1/customers")
                .header("stripe-version", "2024-06-20")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("email=old%40example.com"),
        )
        .await;
    assert_eq!(older.status, 400);
    assert_eq!(older.json["error"]["type"], "invalid_request_error");
    let message = older.json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2024-06-20") && message.contains(stripe_emulator::API_VERSION),
        "{message}"
    );
    // A refused request changes nothing.
    let list = raw.get("/v1/customers").await;
    assert_eq!(list.json["data"], serde_json::json!([]));
    emulator.stop().await;
}
