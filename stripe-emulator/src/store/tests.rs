use super::*;
use serde_json::json;

#[test]
fn newest_first_and_tombstones() {
    let mut store = Store::new(false);
    for id in ["cus_a", "cus_b", "cus_c"] {
        store.insert(kinds::CUSTOMER, json!({ "id": id }));
    }
    let ids: Vec<_> = store
        .newest_first(kinds::CUSTOMER)
        .map(|r| r.object["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("cus_c"), json!("cus_b"), json!("cus_a")]);
    store.get_mut(kinds::CUSTOMER, "cus_b").unwrap().object =
        json!({"id": "cus_b", "deleted": true});
    assert_eq!(store.live_newest_first(kinds::CUSTOMER).count(), 2);
    assert!(store.get_live(kinds::CUSTOMER, "cus_b").is_none());
    assert!(store.get(kinds::CUSTOMER, "cus_b").is_some());
    assert!(
        store.seq_of(kinds::CUSTOMER, "cus_a").unwrap()
            < store.seq_of(kinds::CUSTOMER, "cus_c").unwrap()
    );
    assert_eq!(store.find_any("cus_c").unwrap().object["id"], "cus_c");
    assert!(store.find_any("xyz_c").is_none());
    store.remove(kinds::CUSTOMER, "cus_c");
    assert_eq!(store.count(kinds::CUSTOMER), 2);
    store.clear();
    assert_eq!(store.count(kinds::CUSTOMER), 0);
}

#[test]
fn the_journal_reports_changes_in_order() {
    let mut store = Store::new(false);
    store.insert(kinds::CUSTOMER, json!({"id": "cus_a", "n": 1}));
    store.insert(kinds::CUSTOMER, json!({"id": "cus_b", "n": 1}));
    assert_eq!(store.drain_changes().len(), 2);
    assert!(store.drain_changes().is_empty());

    // Changes are reported by their last change, with when they were first made.
    store.get_mut(kinds::CUSTOMER, "cus_a").unwrap().object["n"] = json!(2);
    store.insert(kinds::PRICE, json!({"id": "price_x"}));
    store.get_mut(kinds::CUSTOMER, "cus_b").unwrap().object["n"] = json!(3);
    store.get_mut(kinds::PRICE, "price_x").unwrap().object["n"] = json!(1);
    store.get_mut(kinds::CUSTOMER, "cus_a").unwrap().object["n"] = json!(4);
    store.insert(kinds::EVENT, json!({"id": "evt_1"}));
    let changes = store.drain_changes();
    let order: Vec<&str> = changes.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["cus_b", "price_x", "cus_a"]);
    assert_eq!(changes[2].before, Some(json!({"id": "cus_a", "n": 1})));
    assert_eq!(changes[2].after, Some(json!({"id": "cus_a", "n": 4})));
    assert_eq!(changes[1].before, None);
    assert!(changes[2].first < changes[1].first && changes[1].first < changes[0].first);
    assert!(changes[0].last < changes[1].last);

    // A flushed change keeps its intermediate state; later changes start afresh.
    store.get_mut(kinds::CUSTOMER, "cus_a").unwrap().object["n"] = json!(5);
    store.flush_change(kinds::CUSTOMER, "cus_a");
    store.get_mut(kinds::CUSTOMER, "cus_a").unwrap().object["n"] = json!(6);
    store.remove(kinds::CUSTOMER, "cus_b");
    let changes = store.drain_changes();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0].after, Some(json!({"id": "cus_a", "n": 5})));
    assert_eq!(changes[1].before, Some(json!({"id": "cus_a", "n": 5})));
    assert_eq!(changes[2].id, "cus_b");
    assert_eq!(changes[2].after, None);
}

#[test]
fn trim_keeps_the_newest() {
    let mut store = Store::new(false);
    for i in 0..5 {
        store.insert(kinds::EVENT, json!({"id": format!("evt_{i}")}));
    }
    store.trim_oldest(kinds::EVENT, 2);
    let ids: Vec<_> = store
        .newest_first(kinds::EVENT)
        .map(|r| r.object["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("evt_4"), json!("evt_3")]);
}

#[test]
fn singletons_are_stable() {
    let mut store = Store::new(false);
    let a = store.singleton("x", || "one".into());
    let b = store.singleton("x", || "two".into());
    assert_eq!(a, "one");
    assert_eq!(b, "one");
}

#[test]
fn shifting_created_keeps_order() {
    let mut store = Store::new(false);
    for i in 0..3 {
        store.insert(
            kinds::EVENT,
            json!({"id": format!("evt_{i}"), "created": 100 + i}),
        );
    }
    assert_eq!(store.shift_created(kinds::EVENT, 50), 3);
    assert_eq!(store.shift_created(kinds::CUSTOMER, 50), 0);
    let created: Vec<_> = store
        .newest_first(kinds::EVENT)
        .map(|r| (r.object["created"].clone(), r.created))
        .collect();
    assert_eq!(
        created,
        vec![(json!(52), 52), (json!(51), 51), (json!(50), 50)]
    );
    let walk = Walk {
        created_min: 51,
        ..Walk::default()
    };
    assert_eq!(store.walk(kinds::EVENT, walk).count(), 2);
}

#[test]
fn compacted_records_read_and_change_as_before() {
    let mut store = Store::new(false);
    for i in 0..5 {
        store.insert_with(
            kinds::CUSTOMER,
            json!({"id": format!("cus_{i}"), "created": 10 + i, "n": {"deep": [i, 1.5, null]}}),
            Map::from_iter([("secret".to_owned(), json!(i))]),
        );
    }
    store.compact();
    assert!(store.warm.borrow().is_empty());
    let record = store.get(kinds::CUSTOMER, "cus_3").unwrap();
    assert_eq!(record.object["n"]["deep"], json!([3, 1.5, null]));
    assert_eq!(record.internal["secret"], json!(3));
    assert_eq!(record.list_key(), (13, 4));
    assert_eq!(store.warm.borrow().len(), 1, "a read is noted once");
    store.get(kinds::CUSTOMER, "cus_3").unwrap();
    assert_eq!(store.warm.borrow().len(), 1);
    store.get_mut(kinds::CUSTOMER, "cus_3").unwrap().object["n"] = json!(7);
    store.compact();
    assert_eq!(store.get(kinds::CUSTOMER, "cus_3").unwrap().object["n"], 7);
    let ids: Vec<_> = store
        .newest_first(kinds::CUSTOMER)
        .map(|r| r.object["id"].clone())
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids[0], "cus_4");
    store.compact();
    assert_eq!(store.list_key_of(kinds::CUSTOMER, "cus_0"), Some((10, 1)));
    assert_eq!(store.seq_of(kinds::CUSTOMER, "cus_0"), Some(1));
    let removed = store.remove(kinds::CUSTOMER, "cus_0").unwrap();
    assert_eq!(removed.internal["secret"], json!(0));
    assert_eq!(store.count(kinds::CUSTOMER), 4);
    store.trim_oldest(kinds::CUSTOMER, 2);
    assert_eq!(store.count(kinds::CUSTOMER), 2);
    assert_eq!(store.drain_changes().len(), 5, "five customers, each once");
}

#[test]
fn needles_skip_records_at_rest_that_cannot_match() {
    let mut store = Store::new(false);
    store.insert(kinds::CHARGE, json!({"id": "ch_1", "customer": "cus_a\"q"}));
    store.insert(
        kinds::CHARGE,
        json!({"id": "ch_2", "customer": "cus_b", "nested": {"customer": "cus_a\"q"}}),
    );
    store.insert(kinds::CHARGE, json!({"id": "ch_3", "customer": "cus_b"}));
    store.compact();
    assert_eq!(field_needle("customer", "x\"y"), r#""customer":"x\"y""#);
    let ids = |store: &Store, customer: &str| -> Vec<String> {
        store
            .live_where(kinds::CHARGE, &[("customer", customer)])
            .map(|r| r.object["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&store, "cus_a\"q"),
        ["ch_1"],
        "the nested one is refused"
    );
    assert_eq!(ids(&store, "cus_b"), ["ch_3", "ch_2"]);
    assert!(ids(&store, "cus_c").is_empty());
    // A scan visits every record and keeps none parsed.
    store.compact();
    let mut seen = Vec::new();
    store.scan(kinds::CHARGE, |r| seen.push(r.object["id"].clone()));
    assert_eq!(seen, [json!("ch_3"), json!("ch_2"), json!("ch_1")]);
    assert!(store.warm.borrow().is_empty());
    // Only the records that could match were parsed.
    store.compact();
    let _ = ids(&store, "cus_c");
    assert!(store.warm.borrow().is_empty());
    // A changed (hot) record is always checked by its fields.
    store.get_mut(kinds::CHARGE, "ch_3").unwrap().object["customer"] = json!("cus_c");
    assert_eq!(ids(&store, "cus_c"), ["ch_3"]);
}
