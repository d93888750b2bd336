use super::*;

#[test]
fn tokens() {
    assert_eq!(test_card("pm_card_visa").unwrap().last4, "4242");
    assert_eq!(test_card("pm_card_mastercard").unwrap().brand, "mastercard");
    assert_eq!(
        test_card("pm_card_chargeDeclined")
            .unwrap()
            .decline
            .unwrap()
            .decline_code,
        "generic_decline"
    );
    assert!(test_card("pm_card_declined").unwrap().decline.is_some());
    assert!(test_card("pm_card_nope").is_none());
    let a = fingerprint(test_card("pm_card_visa").unwrap());
    assert_eq!(a.len(), 16);
    assert_eq!(a, fingerprint(test_card("pm_card_visa").unwrap()));
    assert_ne!(a, fingerprint(test_card("pm_card_mastercard").unwrap()));
}

#[test]
fn card_objects() {
    let pm = card_object(
        test_card("pm_card_mastercard").unwrap(),
        "pm_1x",
        7,
        false,
        Some("cus_1"),
    );
    assert_eq!(pm["id"], "pm_1x");
    assert_eq!(pm["customer"], "cus_1");
    assert_eq!(pm["card"]["brand"], "mastercard");
    assert_eq!(pm["card"]["last4"], "4444");
    assert_eq!(pm["card"]["exp_month"], 12);
    assert_eq!(pm["metadata"], json!({}));
    assert_eq!(pm["billing_details"]["email"], Value::Null);
}
