//! End-to-end: the real async-stripe client against the emulator, for every endpoint the
//! emulator implements. Each call must deserialize and carry the values sent.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, client, metadata, start, stripe_error, test_key};
use futures_util::StreamExt;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, ListPaymentMethodsCustomer, RetrieveCustomer,
    RetrieveCustomerReturned, RetrievePaymentMethodCustomer, UpdateCustomer,
    UpdateCustomerInvoiceSettings,
};
use stripe_payment::payment_method::{
    AttachPaymentMethod, DetachPaymentMethod, ListPaymentMethod, RetrievePaymentMethod,
};
use stripe_shared::{ApiErrorsCode, ApiErrorsType, Customer, PaymentMethodType};

fn retrieved(result: RetrieveCustomerReturned) -> Customer {
    match result {
        RetrieveCustomerReturned::Customer(customer) => customer,
        RetrieveCustomerReturned::DeletedCustomer(deleted) => {
            panic!("customer {} is deleted", deleted.id)
        }
    }
}

#[tokio::test]
async fn customer_lifecycle_with_payment_method() {
    let emulator = start().await;
    let stripe = client(&emulator, &test_key());
    let before = chrono::Utc::now().timestamp();

    let customer = CreateCustomer::new()
        .email("ann@example.com")
        .name("Ann Lee")
        .phone("+15555550100")
        .description("first customer")
        .metadata(metadata(&[("plan", "pro"), ("tenant", "t-1")]))
        .payment_method("pm_card_visa")
        .send(&stripe)
        .await
        .expect("customer is created");
    assert!(customer.id.as_str().starts_with("cus_"), "{}", customer.id);
    assert_eq!(customer.id.as_str().len(), 18);
    assert_eq!(customer.email.as_deref(), Some("ann@example.com"));
    assert_eq!(customer.name.as_deref(), Some("Ann Lee"));
    assert_eq!(customer.phone.as_deref(), Some("+15555550100"));
    assert_eq!(customer.description.as_deref(), Some("first customer"));
    assert_eq!(
        customer.metadata,
        Some(metadata(&[("plan", "pro"), ("tenant", "t-1")]))
    );
    assert!(!customer.livemode);
    assert!(
        customer.created.abs_diff(before) <= 5,
        "created {}",
        customer.created
    );
    assert!(customer.discount.is_none());
    let pm_id = customer
        .invoice_settings
        .as_ref()
        .and_then(|s| s.default_payment_method.as_ref())
        .map(|pm| pm.id().to_string())
        .expect("the payment method is the default");
    assert!(pm_id.starts_with("pm_1"), "{pm_id}");

    let pm = RetrievePaymentMethod::new(pm_id.as_str())
        .send(&stripe)
        .await
        .expect("payment method");
    assert_eq!(pm.id.as_str(), pm_id);
    assert_eq!(pm.type_, PaymentMethodType::Card);
    assert_eq!(
        pm.customer.as_ref().map(|c| c.id().to_string()),
        Some(customer.id.to_string())
    );
    let card = pm.card.expect("card details");
    assert_eq!(card.brand, "visa");
    assert_eq!(card.last4, "4242");
    assert_eq!(card.exp_month, 12);
    assert!(card.exp_year > i64::from(chrono::Datelike::year(&chrono::Utc::now())));

    let fetched = retrieved(
        RetrieveCustomer::new(customer.id.clone())
            .send(&stripe)
            .await
            .expect("retrieve"),
    );
    assert_eq!(fetched.id, customer.id);
    assert_eq!(fetched.email.as_deref(), Some("ann@example.com"));
    assert_eq!(fetched.metadata, customer.metadata);

    // Update: metadata merges, an empty value deletes a key.
    let updated = UpdateCustomer::new(customer.id.clone())
        .name("Ann Lee-Smith")
        .email("ann2@example.com")
        .metadata(metadata(&[("plan", ""), ("tier", "gold")]))
        .send(&stripe)
        .await
        .expect("update");
    assert_eq!(updated.name.as_deref(), Some("Ann Lee-Smith"));
    assert_eq!(updated.email.as_deref(), Some("ann2@example.com"));
    assert_eq!(updated.description.as_deref(), Some("first customer"));
    assert_eq!(
        updated.metadata,
        Some(metadata(&[("tenant", "t-1"), ("tier", "gold")]))
    );

    // Unsetting the default payment method.
    let updated = UpdateCustomer::new(customer.id.clone())
        .invoice_settings(UpdateCustomerInvoiceSettings {
            default_payment_method: Some(String::new()),
            ..Default::default()
        })
        .send(&stripe)
        .await
        .expect("unset default");
    assert!(
        updated
            .invoice_settings
            .and_then(|s| s.default_payment_method)
            .is_none()
    );
    let updated = UpdateCustomer::new(customer.id.clone())
        .invoice_settings(UpdateCustomerInvoiceSettings {
            default_payment_method: Some(pm_id.clone()),
            ..Default::default()
        })
        .send(&stripe)
        .await
        .expect("set default");
    assert_eq!(
        updated
            .invoice_settings
            .and_then(|s| s.default_payment_method)
            .map(|pm| pm.id().to_string()),
        Some(pm_id.clone())
    );

    let deleted = DeleteCustomer::new(customer.id.clone())
        .send(&stripe)
        .await
        .expect("delete");
    assert_eq!(deleted.id, customer.id);
    match RetrieveCustomer::new(customer.id.clone())
        .send(&stripe)
        .await
        .expect("retrieve deleted")
    {
        RetrieveCustomerReturned::DeletedCustomer(d) => assert_eq!(d.id, customer.id),
        RetrieveCustomerReturned::Customer(c) => panic!("{} should be deleted", c.id),
    }
    let listed = ListCustomer::new().send(&stripe).await.expect("list");
    assert!(listed.data.is_empty(), "deleted customers are not listed");
    // Its payment method was detached.
    let pm = RetrievePaymentMethod::new(pm_id.as_str())
        .send(&stripe)
        .await
        .expect("payment method");
    assert!(pm.customer.is_none());
    // A deleted customer can no longer be updated or deleted.
    let (error, status) = stripe_error(
        UpdateCustomer::new(customer.id.clone())
            .name("x")
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 404);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    let (_, status) = stripe_error(DeleteCustomer::new(customer.id.clone()).send(&stripe).await);
    assert_eq!(status, 404);
    emulator.stop().await;
}

#[tokio::test]
async fn list_customers_pages_newest_first() {
    let emulator = start().await;
    let stripe = client(&emulator, &test_key());
    let mut ids = Vec::new();
    for i in 0..7 {
        let email = if i % 2 == 0 {
            "even@example.com".to_owned()
        } else {
            format!("odd{i}@example.com")
        };
        let c = CreateCustomer::new()
            .email(email)
            .send(&stripe)
            .await
            .expect("create");
        ids.push(c.id.to_string());
    }
    ids.reverse(); // newest first

    let page = ListCustomer::new()
        .limit(3)
        .send(&stripe)
        .await
        .expect("page 1");
    assert_eq!(
        page.data
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>(),
        ids[0..3]
    );
    assert!(page.has_more);
    assert_eq!(page.url, "/v1/customers");
    let page = ListCustomer::new()
        .limit(3)
        .starting_after(ids[2].clone())
        .send(&stripe)
        .await
        .expect("page 2");
    assert_eq!(
        page.data
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>(),
        ids[3..6]
    );
    assert!(page.has_more);
    let page = ListCustomer::new()
        .limit(3)
        .starting_after(ids[5].clone())
        .send(&stripe)
        .await
        .expect("page 3");
    assert_eq!(
        page.data
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>(),
        ids[6..7]
    );
    assert!(!page.has_more);
    let page = ListCustomer::new()
        .limit(2)
        .ending_before(ids[3].clone())
        .send(&stripe)
        .await
        .expect("back");
    assert_eq!(
        page.data
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>(),
        ids[1..3]
    );
    assert!(page.has_more);

    let evens = ListCustomer::new()
        .email("even@example.com")
        .send(&stripe)
        .await
        .expect("email filter");
    assert_eq!(evens.data.len(), 4);
    assert!(
        evens
            .data
            .iter()
            .all(|c| c.email.as_deref() == Some("even@example.com"))
    );

    // async-stripe's own paginator walks every page with starting_after.
    let mut stream = ListCustomer::new().limit(2).paginate().stream(&stripe);
    let mut walked = Vec::new();
    while let Some(customer) = stream.next().await {
        walked.push(customer.expect("page").id.to_string());
    }
    assert_eq!(walked, ids);

    let (error, status) = stripe_error(ListCustomer::new().limit(101).send(&stripe).await);
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::ParameterInvalidInteger));
    assert_eq!(error.param.as_deref(), Some("limit"));
    let (error, status) = stripe_error(
        ListCustomer::new()
            .starting_after("cus_nope")
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 404);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.param.as_deref(), Some("starting_after"));
    emulator.stop().await;
}

#[tokio::test]
async fn payment_methods_attach_list_detach() {
    let emulator = start().await;
    let stripe = client(&emulator, &test_key());
    let customer = CreateCustomer::new()
        .email("pm@example.com")
        .send(&stripe)
        .await
        .expect("create");
    assert!(
        customer
            .invoice_settings
            .as_ref()
            .and_then(|s| s.default_payment_method.as_ref())
            .is_none()
    );

    let mastercard = AttachPaymentMethod::new("pm_card_mastercard")
        .customer(customer.id.to_string())
        .send(&stripe)
        .await
        .expect("attach mastercard");
    assert!(mastercard.id.as_str().starts_with("pm_1"));
    assert_eq!(
        mastercard.customer.as_ref().map(|c| c.id().to_string()),
        Some(customer.id.to_string())
    );
    let card = mastercard.card.as_ref().expect("card");
    assert_eq!(
        (card.brand.as_str(), card.last4.as_str()),
        ("mastercard", "4444")
    );

    let declining = AttachPaymentMethod::new("pm_card_chargeDeclined")
        .customer(customer.id.to_string())
        .send(&stripe)
        .await
        .expect("declining cards attach fine");
    assert_eq!(
        declining.card.as_ref().map(|c| c.last4.as_str()),
        Some("0002")
    );

    let listed = ListPaymentMethod::new()
        .customer(customer.id.to_string())
        .send(&stripe)
        .await
        .expect("list");
    assert_eq!(
        listed
            .data
            .iter()
            .map(|pm| pm.id.to_string())
            .collect::<Vec<_>>(),
        vec![declining.id.to_string(), mastercard.id.to_string()]
    );
    let listed = ListPaymentMethodsCustomer::new(customer.id.clone())
        .send(&stripe)
        .await
        .expect("list for customer");
    assert_eq!(listed.data.len(), 2);
    assert_eq!(
        listed.url,
        format!("/v1/customers/{}/payment_methods", customer.id)
    );
    let one = RetrievePaymentMethodCustomer::new(customer.id.clone(), mastercard.id.to_string())
        .send(&stripe)
        .await
        .expect("retrieve for customer");
    assert_eq!(one.id, mastercard.id);

    // Attaching to another customer is refused.
    let other = CreateCustomer::new().send(&stripe).await.expect("other");
    let (error, status) = stripe_error(
        AttachPaymentMethod::new(mastercard.id.clone())
            .customer(other.id.to_string())
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);

    let detached = DetachPaymentMethod::new(mastercard.id.clone())
        .send(&stripe)
        .await
        .expect("detach");
    assert!(detached.customer.is_none());
    let listed = ListPaymentMethodsCustomer::new(customer.id.clone())
        .send(&stripe)
        .await
        .expect("list after detach");
    assert_eq!(
        listed
            .data
            .iter()
            .map(|pm| pm.id.to_string())
            .collect::<Vec<_>>(),
        vec![declining.id.to_string()]
    );
    let (_, status) = stripe_error(
        DetachPaymentMethod::new(mastercard.id.clone())
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 400, "detaching twice fails");

    let (error, status) = stripe_error(
        AttachPaymentMethod::new("pm_card_visa")
            .customer("cus_nope")
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.param.as_deref(), Some("customer"));
    assert_eq!(
        error.message.as_deref(),
        Some("No such customer: 'cus_nope'")
    );
    emulator.stop().await;
}

#[tokio::test]
async fn billing_portal_sessions() {
    let emulator = start().await;
    let stripe = client(&emulator, &test_key());
    let customer = CreateCustomer::new()
        .email("portal@example.com")
        .send(&stripe)
        .await
        .expect("create");

    let session = CreateBillingPortalSession::new()
        .customer(customer.id.to_string())
        .return_url("https://app.example.com/account")
        .send(&stripe)
        .await
        .expect("portal session");
    assert!(session.id.as_str().starts_with("bps_1"), "{}", session.id);
    assert_eq!(session.customer, customer.id.to_string());
    assert_eq!(
        session.return_url.as_deref(),
        Some("https://app.example.com/account")
    );
    assert!(!session.livemode);
    assert!(session.flow.is_none());
    assert!(session.configuration.id().as_str().starts_with("bpc_"));
    assert!(
        session
            .url
            .starts_with(&format!("{}/p/session/test_", emulator.base_url())),
        "{}",
        session.url
    );

    // The URL opens a page that leads back to return_url.
    let page = reqwest::get(&session.url).await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("href=\"https://app.example.com/account\""),
        "{html}"
    );

    let without_return = CreateBillingPortalSession::new()
        .customer(customer.id.to_string())
        .send(&stripe)
        .await
        .expect("no return_url");
    assert!(without_return.return_url.is_none());
    assert_eq!(
        without_return.configuration.id(),
        session.configuration.id(),
        "one default configuration"
    );

    let (error, status) = stripe_error(CreateBillingPortalSession::new().send(&stripe).await);
    assert_eq!(status, 400);
    assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
    assert_eq!(error.code, Some(ApiErrorsCode::ParameterMissing));
    assert_eq!(error.param.as_deref(), Some("customer"));

    let (error, status) = stripe_error(
        CreateBillingPortalSession::new()
            .customer("cus_nope")
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.param.as_deref(), Some("customer"));
    assert_eq!(
        error.message.as_deref(),
        Some("No such customer: 'cus_nope'")
    );

    let (error, _) = stripe_error(
        CreateBillingPortalSession::new()
            .customer(customer.id.to_string())
            .return_url("not a url")
            .send(&stripe)
            .await,
    );
    assert_eq!(error.code, Some(ApiErrorsCode::UrlInvalid));
    assert_eq!(error.param.as_deref(), Some("return_url"));
    emulator.stop().await;
}

#[tokio::test]
async fn errors_keep_type_code_param_and_status() {
    let emulator = start().await;
    let stripe = client(&emulator, &test_key());

    let (error, status) = stripe_error(RetrieveCustomer::new("cus_missing").send(&stripe).await);
    assert_eq!(status, 404);
    assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.param.as_deref(), Some("id"));
    assert_eq!(
        error.message.as_deref(),
        Some("No such customer: 'cus_missing'")
    );
    assert_eq!(
        error.doc_url.as_deref(),
        Some("https://stripe.com/docs/error-codes/resource-missing")
    );

    let (error, status) = stripe_error(
        CreateCustomer::new()
            .payment_method("pm_bogus")
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert_eq!(error.param.as_deref(), Some("payment_method"));
    assert_eq!(
        error.message.as_deref(),
        Some("No such PaymentMethod: 'pm_bogus'")
    );
    // Nothing was created by the failed call.
    assert!(
        ListCustomer::new()
            .send(&stripe)
            .await
            .expect("list")
            .data
            .is_empty()
    );

    let (error, status) = stripe_error(
        CreateCustomer::new()
            .email("not-an-email")
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.code, Some(ApiErrorsCode::EmailInvalid));
    assert_eq!(error.param.as_deref(), Some("email"));

    let bad_key = client(&emulator, "pk_test_publishable");
    let (error, status) = stripe_error(ListCustomer::new().send(&bad_key).await);
    assert_eq!(status, 401);
    assert_eq!(error.type_, ApiErrorsType::InvalidRequestError);
    assert!(
        error
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("Invalid API Key provided")
    );
    emulator.stop().await;
}

#[tokio::test]
async fn idempotent_requests_replay_and_conflict() {
    let emulator = start().await;
    let key = test_key();
    let stripe = client(&emulator, &key);
    let strategy = || RequestStrategy::Idempotent(IdempotencyKey::new("signup-42").expect("key"));

    let first = CreateCustomer::new()
        .email("idem@example.com")
        .customize()
        .request_strategy(strategy())
        .send(&stripe)
        .await
        .expect("first");
    let replay = CreateCustomer::new()
        .email("idem@example.com")
        .customize()
        .request_strategy(strategy())
        .send(&stripe)
        .await
        .expect("replay");
    assert_eq!(replay.id, first.id);
    assert_eq!(replay.invoice_prefix, first.invoice_prefix);
    assert_eq!(
        ListCustomer::new()
            .send(&stripe)
            .await
            .expect("list")
            .data
            .len(),
        1,
        "no second customer"
    );

    let (error, status) = stripe_error(
        CreateCustomer::new()
            .email("other@example.com")
            .customize()
            .request_strategy(strategy())
            .send(&stripe)
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(error.type_, ApiErrorsType::IdempotencyError);
    assert!(
        error
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("Keys for idempotent requests can only be used with the same parameters"),
        "{:?}",
        error.message
    );

    // Retries with a random key (async-stripe's Retry strategy) create once.
    let requests = Raw::new(&emulator, &key).get("/_emulator/requests").await;
    let data = requests.json["data"].as_array().expect("requests").clone();
    let posts: Vec<_> = data.iter().filter(|r| r["method"] == "POST").collect();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[0]["idempotency_key"], "signup-42");
    assert_eq!(posts[0]["idempotent_replayed"], false);
    assert_eq!(posts[1]["idempotent_replayed"], true);
    assert_eq!(posts[2]["status"], 400);
    emulator.stop().await;
}

#[tokio::test]
async fn keys_and_accounts_are_isolated() {
    let emulator = start().await;
    let alice = client(&emulator, &test_key());
    let bob = client(&emulator, &test_key());
    let customer = CreateCustomer::new()
        .email("alice@example.com")
        .send(&alice)
        .await
        .expect("create");

    let (error, status) = stripe_error(RetrieveCustomer::new(customer.id.clone()).send(&bob).await);
    assert_eq!(status, 404);
    assert_eq!(error.code, Some(ApiErrorsCode::ResourceMissing));
    assert!(
        ListCustomer::new()
            .send(&bob)
            .await
            .expect("bob lists")
            .data
            .is_empty()
    );
    assert_eq!(
        ListCustomer::new()
            .send(&alice)
            .await
            .expect("alice lists")
            .data
            .len(),
        1
    );

    // A connected account (Stripe-Account) has its own objects too.
    let key = test_key();
    let platform = client(&emulator, &key);
    let connected = stripe::ClientBuilder::new(key.as_str())
        .url(emulator.base_url())
        .account_id("acct_1Connected".parse().expect("account id"))
        .build()
        .expect("client");
    let on_connected = CreateCustomer::new()
        .send(&connected)
        .await
        .expect("create on connected");
    assert!(
        ListCustomer::new()
            .send(&platform)
            .await
            .expect("platform")
            .data
            .is_empty()
    );
    let listed = ListCustomer::new()
        .send(&connected)
        .await
        .expect("connected");
    assert_eq!(
        listed.data.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        vec![on_connected.id]
    );
    emulator.stop().await;
}

#[tokio::test]
async fn latency_provokes_client_timeouts() {
    let emulator = start().await;
    let key = test_key();
    let raw = Raw::new(&emulator, &key);
    raw.set_latency(400).await;

    let impatient = stripe::ClientBuilder::new(key.as_str())
        .url(emulator.base_url())
        .timeout(Duration::from_millis(100))
        .build()
        .expect("client");
    let started = Instant::now();
    let result = ListCustomer::new().send(&impatient).await;
    assert!(matches!(result, Err(StripeError::Timeout)), "{result:?}");
    assert!(started.elapsed() < Duration::from_millis(390));

    let patient = client(&emulator, &key);
    let started = Instant::now();
    ListCustomer::new()
        .send(&patient)
        .await
        .expect("slow but fine");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );

    // Other keys are not slowed down.
    let other = client(&emulator, &test_key());
    let started = Instant::now();
    ListCustomer::new().send(&other).await.expect("fast");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    raw.set_latency(0).await;
    ListCustomer::new()
        .send(&impatient)
        .await
        .expect("fast again");
    emulator.stop().await;
}

#[actix_web::test]
async fn runs_under_the_actix_runtime() {
    let emulator = start().await;
    let stripe = client(&emulator, &test_key());
    let customer = CreateCustomer::new()
        .payment_method("pm_card_visa")
        .invoice_settings(stripe_core::customer::CreateCustomerInvoiceSettings {
            default_payment_method: Some("pm_card_visa".to_owned()),
            ..Default::default()
        })
        .send(&stripe)
        .await
        .expect("create under actix");
    let default = customer
        .invoice_settings
        .and_then(|s| s.default_payment_method)
        .map(|pm| pm.id().to_string());
    assert!(default.is_some_and(|id| id.starts_with("pm_1")));
    emulator.stop().await;
}

#[tokio::test]
async fn expand_default_payment_method() {
    let emulator = start().await;
    let stripe = client(&emulator, &test_key());
    let customer = CreateCustomer::new()
        .payment_method("pm_card_mastercard")
        .expand(vec!["invoice_settings.default_payment_method".to_owned()])
        .send(&stripe)
        .await
        .expect("create expanded");
    let default = customer
        .invoice_settings
        .and_then(|s| s.default_payment_method)
        .expect("default");
    let stripe_types::Expandable::Object(pm) = default else {
        panic!("not expanded")
    };
    assert_eq!(pm.card.map(|c| c.last4), Some("4444".to_owned()));

    // On GET, async-stripe sends expand[] in the query string.
    let fetched = RetrieveCustomer::new(customer.id.clone())
        .expand(vec![
            "invoice_settings.default_payment_method.customer".to_owned(),
        ])
        .send(&stripe)
        .await
        .expect("retrieve expanded");
    let default = retrieved(fetched)
        .invoice_settings
        .and_then(|s| s.default_payment_method)
        .expect("default");
    let stripe_types::Expandable::Object(pm) = default else {
        panic!("not expanded")
    };
    let Some(stripe_types::Expandable::Object(owner)) = pm.customer else {
        panic!("customer not expanded")
    };
    assert_eq!(owner.id, customer.id);
    emulator.stop().await;
}
