use super::*;
use serde_json::json;

fn change(kind: &str, before: Option<Value>, after: Option<Value>) -> Change {
    Change {
        kind: kind.to_owned(),
        id: "x".to_owned(),
        before,
        after,
        first: 0,
        last: 0,
    }
}

fn types(events: &[Derived]) -> Vec<&str> {
    events.iter().map(|e| e.event_type).collect()
}

#[test]
fn lifecycle_events() {
    let cus =
        json!({"id": "cus_1", "object": "customer", "email": null, "next_invoice_sequence": 1});
    let created = derive(&change(kinds::CUSTOMER, None, Some(cus.clone())), 0);
    assert_eq!(types(&created), ["customer.created"]);
    assert_eq!(created[0].object, cus);
    assert!(created[0].previous_attributes.is_none());

    let mut updated = cus.clone();
    updated["email"] = json!("a@b.co");
    let events = derive(
        &change(kinds::CUSTOMER, Some(cus.clone()), Some(updated.clone())),
        0,
    );
    assert_eq!(types(&events), ["customer.updated"]);
    assert_eq!(events[0].object, updated);
    assert_eq!(events[0].previous_attributes, Some(json!({"email": null})));

    let mut sequence = cus.clone();
    sequence["next_invoice_sequence"] = json!(2);
    assert!(
        derive(
            &change(kinds::CUSTOMER, Some(cus.clone()), Some(sequence)),
            0
        )
        .is_empty()
    );

    let tombstone = json!({"id": "cus_1", "object": "customer", "deleted": true});
    let deleted = derive(
        &change(kinds::CUSTOMER, Some(cus.clone()), Some(tombstone.clone())),
        0,
    );
    assert_eq!(types(&deleted), ["customer.deleted"]);
    assert_eq!(deleted[0].object, cus);
    assert!(
        derive(
            &change(kinds::CUSTOMER, Some(tombstone.clone()), Some(tombstone)),
            0
        )
        .is_empty()
    );
    assert!(derive(&change(kinds::CUSTOMER, Some(cus.clone()), Some(cus)), 0).is_empty());

    let coupon = json!({"id": "c", "object": "coupon", "times_redeemed": 0, "max_redemptions": null, "redeem_by": null, "valid": true});
    assert_eq!(
        types(&derive(
            &change(kinds::COUPON, Some(coupon.clone()), None),
            0
        )),
        ["coupon.deleted"]
    );
    let mut redeemed = coupon.clone();
    redeemed["times_redeemed"] = json!(1);
    assert!(derive(&change(kinds::COUPON, Some(coupon), Some(redeemed)), 0).is_empty());
}

#[test]
fn payment_events() {
    let pi = json!({"id": "pi_1", "status": "requires_payment_method", "last_payment_error": null});
    let mut succeeded = pi.clone();
    succeeded["status"] = json!("succeeded");
    assert_eq!(
        types(&derive(
            &change(kinds::PAYMENT_INTENT, None, Some(succeeded.clone())),
            0
        )),
        ["payment_intent.created", "payment_intent.succeeded"]
    );
    let mut failed = pi.clone();
    failed["last_payment_error"] = json!({"code": "card_declined"});
    assert_eq!(
        types(&derive(
            &change(kinds::PAYMENT_INTENT, Some(pi.clone()), Some(failed)),
            0
        )),
        ["payment_intent.payment_failed"]
    );
    let mut capturable = pi.clone();
    capturable["status"] = json!("requires_capture");
    assert_eq!(
        types(&derive(
            &change(kinds::PAYMENT_INTENT, Some(pi), Some(capturable)),
            0
        )),
        ["payment_intent.amount_capturable_updated"]
    );

    let charge =
        json!({"id": "ch_1", "status": "succeeded", "captured": false, "amount_refunded": 0});
    assert_eq!(
        types(&derive(
            &change(kinds::CHARGE, None, Some(charge.clone())),
            0
        )),
        ["charge.succeeded"]
    );
    let mut captured = charge.clone();
    captured["captured"] = json!(true);
    assert_eq!(
        types(&derive(
            &change(kinds::CHARGE, Some(charge), Some(captured)),
            0
        )),
        ["charge.captured"]
    );

    let charge =
        json!({"id": "ch_1", "status": "succeeded", "captured": true, "amount_refunded": 0});
    let mut refunded = charge.clone();
    refunded["amount_refunded"] = json!(400);
    assert_eq!(
        types(&derive(
            &change(kinds::CHARGE, Some(charge), Some(refunded)),
            0
        )),
        ["charge.refunded"]
    );
    let refund = json!({"id": "re_1", "object": "refund", "metadata": {}});
    assert_eq!(
        types(&derive(
            &change(kinds::REFUND, None, Some(refund.clone())),
            0
        )),
        ["refund.created"]
    );
    let mut tagged = refund.clone();
    tagged["metadata"] = json!({"k": "v"});
    let updated = derive(&change(kinds::REFUND, Some(refund), Some(tagged)), 0);
    assert_eq!(types(&updated), ["refund.updated", "charge.refund.updated"]);
    assert_eq!(
        updated[1].previous_attributes,
        Some(json!({"metadata": {}}))
    );
    let link = json!({"id": "plink_1", "object": "payment_link", "active": true});
    let mut inactive = link.clone();
    inactive["active"] = json!(false);
    assert_eq!(
        types(&derive(
            &change(kinds::PAYMENT_LINK, None, Some(link.clone())),
            0
        )),
        ["payment_link.created"]
    );
    assert_eq!(
        types(&derive(
            &change(kinds::PAYMENT_LINK, Some(link), Some(inactive)),
            0
        )),
        ["payment_link.updated"]
    );

    let pm = json!({"id": "pm_1", "customer": null});
    let attached = json!({"id": "pm_1", "customer": "cus_1"});
    assert_eq!(
        types(&derive(
            &change(kinds::PAYMENT_METHOD, None, Some(attached.clone())),
            0
        )),
        ["payment_method.attached"]
    );
    assert!(derive(&change(kinds::PAYMENT_METHOD, None, Some(pm.clone())), 0).is_empty());
    assert_eq!(
        types(&derive(
            &change(kinds::PAYMENT_METHOD, Some(attached), Some(pm)),
            0
        )),
        ["payment_method.detached"]
    );
}

#[test]
fn billing_events() {
    let invoice = json!({"id": "in_1", "object": "invoice", "status": "draft", "attempt_count": 0, "payments": {}});
    let created = derive(&change(kinds::INVOICE, None, Some(invoice.clone())), 0);
    assert_eq!(types(&created), ["invoice.created"]);
    assert!(
        created[0].object.get("payments").is_none(),
        "includable fields are not sent"
    );
    let mut paid = invoice.clone();
    paid["status"] = json!("paid");
    assert_eq!(
        types(&derive(
            &change(kinds::INVOICE, Some(invoice.clone()), Some(paid)),
            0
        )),
        [
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );
    let mut open = invoice.clone();
    open["status"] = json!("open");
    let mut failed = open.clone();
    failed["attempt_count"] = json!(1);
    assert_eq!(
        types(&derive(
            &change(kinds::INVOICE, Some(open), Some(failed)),
            0
        )),
        ["invoice.payment_failed"]
    );

    let sub = json!({"id": "sub_1", "status": "active", "cancel_at_period_end": false});
    let mut ending = sub.clone();
    ending["cancel_at_period_end"] = json!(true);
    let updated = derive(
        &change(kinds::SUBSCRIPTION, Some(sub.clone()), Some(ending)),
        0,
    );
    assert_eq!(types(&updated), ["customer.subscription.updated"]);
    assert_eq!(
        updated[0].previous_attributes,
        Some(json!({"cancel_at_period_end": false}))
    );
    let mut canceled = sub.clone();
    canceled["status"] = json!("canceled");
    let deleted = derive(
        &change(kinds::SUBSCRIPTION, Some(sub), Some(canceled.clone())),
        0,
    );
    assert_eq!(types(&deleted), ["customer.subscription.deleted"]);
    assert_eq!(deleted[0].object, canceled);

    let session = json!({"id": "cs_1", "status": "open"});
    let mut complete = session.clone();
    complete["status"] = json!("complete");
    assert_eq!(
        types(&derive(
            &change(
                kinds::CHECKOUT_SESSION,
                Some(session.clone()),
                Some(complete)
            ),
            0
        )),
        ["checkout.session.completed"]
    );
    assert!(derive(&change(kinds::CHECKOUT_SESSION, None, Some(session)), 0).is_empty());
    assert!(
        derive(
            &change(kinds::WEBHOOK_ENDPOINT, None, Some(json!({"id": "we_1"}))),
            0
        )
        .is_empty()
    );
}
