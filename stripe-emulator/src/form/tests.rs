use super::*;

fn parse(s: &str) -> Params {
    Params::parse(&[s.as_bytes()]).expect("parses")
}

#[test]
fn nested_hashes_and_arrays() {
    let p = parse(
        "email=a%40b.co&metadata[plan]=pro&metadata%5Bseats%5D=3&expand[0]=x&expand[1]=y&items[0][price]=p1&items[1][price]=p2&items[1][quantity]=2&name=Ann+Lee",
    );
    assert_eq!(p.string(&["email"]).unwrap(), Some("a@b.co"));
    assert_eq!(p.string(&["name"]).unwrap(), Some("Ann Lee"));
    assert_eq!(p.string(&["metadata", "plan"]).unwrap(), Some("pro"));
    assert_eq!(p.string(&["metadata", "seats"]).unwrap(), Some("3"));
    assert_eq!(p.expand().unwrap(), vec!["x", "y"]);
    let items = p.get(&["items"]).unwrap().as_list().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(p.to_json()["items"][1]["quantity"], "2");
    assert_eq!(p.to_json()["metadata"]["plan"], "pro");
}

#[test]
fn indices_order_numerically() {
    let p = parse("expand[10]=k&expand[2]=c&expand[0]=a");
    assert_eq!(p.expand().unwrap(), vec!["a", "c", "k"]);
}

#[test]
fn empty_brackets_append() {
    let p = parse("expand[]=a&expand[]=b&items[][price]=p1&items[][quantity]=1&items[][price]=p2");
    assert_eq!(p.expand().unwrap(), vec!["a", "b"]);
    let json = p.to_json();
    assert_eq!(json["items"][0]["price"], "p1");
    assert_eq!(json["items"][0]["quantity"], "1");
    assert_eq!(json["items"][1]["price"], "p2");
}

#[test]
fn hash_args() {
    let p = parse("metadata=&x[a]=1&x[b]=");
    assert_eq!(p.hash(&["metadata"]).unwrap(), Some(HashArg::Clear));
    let Some(HashArg::Entries(e)) = p.hash(&["x"]).unwrap() else {
        panic!("entries")
    };
    assert_eq!(e.get("a").map(String::as_str), Some("1"));
    assert_eq!(e.get("b").map(String::as_str), Some(""));
    assert!(parse("metadata=oops").hash(&["metadata"]).is_err());
}

#[test]
fn conflicts_and_bad_values_are_400s() {
    let err = Params::parse(&[b"a=1&a[b]=2"]).unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.param.as_deref(), Some("a"));
    let err = Params::parse(&[b"a[b]=1&a=2"]).unwrap_err();
    assert_eq!(err.status, 400);
    let p = parse("limit=ten&flag=maybe&h[x]=1");
    let err = p.integer(&["limit"]).unwrap_err();
    assert_eq!(err.code.as_deref(), Some("parameter_invalid_integer"));
    assert_eq!(err.message, "Invalid integer: ten");
    assert!(p.boolean(&["flag"]).is_err());
    assert!(p.string(&["h"]).is_err());
    let err = p.required_string(&["customer"]).unwrap_err();
    assert_eq!(err.code.as_deref(), Some("parameter_missing"));
    assert_eq!(err.param.as_deref(), Some("customer"));
}

#[test]
fn malformed_keys_are_literal() {
    let p = parse("a[b=1&[x]=2&c]=3");
    assert_eq!(p.string(&["a[b"]).unwrap(), Some("1"));
    assert_eq!(p.string(&["[x]"]).unwrap(), Some("2"));
    assert_eq!(p.string(&["c]"]).unwrap(), Some("3"));
}

#[test]
fn canonical_ignores_order() {
    assert_eq!(parse("a=1&b=2").canonical(), parse("b=2&a=1").canonical());
    assert_ne!(parse("a=1&b=2").canonical(), parse("a=1&b=3").canonical());
}

#[test]
fn param_names() {
    assert_eq!(
        param_name(&["invoice_settings", "default_payment_method"]),
        "invoice_settings[default_payment_method]"
    );
    assert_eq!(param_name(&["email"]), "email");
}
