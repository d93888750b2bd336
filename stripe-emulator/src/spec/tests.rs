use super::*;

fn params(body: &str) -> Params {
    match Params::parse(&[body.as_bytes()]) {
        Ok(params) => params,
        Err(error) => panic!("{body}: {error:?}"),
    }
}

#[test]
fn the_embedded_definition_parses_and_names_its_version() {
    let spec = spec().expect("the embedded definition parses");
    assert_eq!(spec.api_version, crate::API_VERSION);
    assert!(spec.versions().iter().any(|v| v == crate::API_VERSION));
    assert!(known_version("2024-06-20"));
    assert!(!known_version("2024-13-45"));
}

#[test]
fn a_literal_segment_beats_an_id() {
    let spec = spec().expect("parses");
    let search = spec
        .endpoint("GET", "/v1/customers/search")
        .expect("search");
    assert_eq!(search.path, "/v1/customers/search");
    let one = spec
        .endpoint("GET", "/v1/customers/cus_1")
        .expect("retrieve");
    assert_eq!(one.path, "/v1/customers/{}");
    assert!(spec.endpoint("GET", "/v1/no_such_things").is_none());
}

#[test]
fn unknown_parameters_are_named_as_stripe_names_them() {
    let none: Vec<String> = Vec::new();
    assert_eq!(
        unknown_parameters(
            "POST",
            "/v1/customers",
            &params("email=a%40b.c&name=A&metadata[k]=v&expand[0]=tax")
        ),
        none
    );
    assert_eq!(
        unknown_parameters("POST", "/v1/customers", &params("emial=a%40b.c")),
        vec!["emial".to_owned()]
    );
    assert_eq!(
        unknown_parameters(
            "POST",
            "/v1/subscriptions",
            &params("customer=cus_1&items[0][price]=p&items[1][pricee]=p")
        ),
        vec!["items[1][pricee]".to_owned()]
    );
    assert_eq!(
        unknown_parameters(
            "POST",
            "/v1/customers/cus_1",
            &params("invoice_settings[default_payment_method]=pm_1&invoice_settings[nope]=1")
        ),
        vec!["invoice_settings[nope]".to_owned()]
    );
    // A scalar cannot be a hash.
    assert_eq!(
        unknown_parameters("POST", "/v1/customers", &params("email[x]=1")),
        vec!["email[x]".to_owned()]
    );
    // List parameters are checked on GET too.
    assert_eq!(
        unknown_parameters("GET", "/v1/customers", &params("limit=3&colour=red")),
        vec!["colour".to_owned()]
    );
    // Paths the definition does not describe are not checked here.
    assert_eq!(
        unknown_parameters("POST", "/v1/no_such_things", &params("a=1")),
        none
    );
}

#[test]
fn a_value_is_checked_against_the_definition() {
    let spec = spec().expect("parses");
    let customer = || {
        let mut value = crate::fixtures::fixture("customer");
        value["id"] = serde_json::json!("cus_1");
        value
    };
    let alts = [Alt::Ref {
        name: "Customer".to_owned(),
    }];
    let problems = check(spec, &customer(), &alts, "customer");
    assert!(problems.is_empty(), "{problems:#?}");

    let mut missing = customer();
    missing.as_object_mut().map(|m| m.remove("email"));
    assert_eq!(
        check(spec, &missing, &alts, "customer"),
        vec!["customer.email: missing (required)"]
    );

    let mut null = customer();
    null["invoice_settings"]["rendering_options"] = serde_json::Value::Null;
    null["livemode"] = serde_json::Value::Null;
    assert_eq!(
        check(spec, &null, &alts, "customer"),
        vec!["customer.livemode: null, but the field is not nullable"]
    );

    let mut wrong = customer();
    wrong["balance"] = serde_json::json!("12");
    wrong["object"] = serde_json::json!("customers");
    wrong["colour"] = serde_json::json!("red");
    let problems = check(spec, &wrong, &alts, "customer");
    assert!(
        problems.contains(&"customer.balance: a string, expected number".to_owned()),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("customer.object: \"customers\" is not one of")),
        "{problems:#?}"
    );
    assert!(
        problems.contains(&"customer.colour: not in Stripe's definition".to_owned()),
        "{problems:#?}"
    );
}
