use super::*;

fn parse(s: &str) -> Params {
    Params::parse(&[s.as_bytes()]).expect("parses")
}

#[test]
fn price_data() {
    let data = read_price_data(
        &parse(
            "currency=USD&unit_amount=1500&recurring[interval]=month&recurring[interval_count]=3",
        ),
        &[],
        Recurrence::Allowed,
    )
    .unwrap();
    assert_eq!(data.currency, "usd");
    assert_eq!(data.unit_amount, 1500);
    assert_eq!(
        data.recurring,
        Some(Recurring {
            interval: "month".into(),
            interval_count: 3
        })
    );
    let one_time = read_price_data(
        &parse("x[currency]=eur&x[unit_amount_decimal]=700"),
        &["x"],
        Recurrence::Forbidden,
    )
    .unwrap();
    assert_eq!(one_time.unit_amount, 700);
    assert!(one_time.recurring.is_none());

    for (query, param) in [
        ("unit_amount=1", "currency"),
        ("currency=usd", "unit_amount"),
        ("currency=usd&unit_amount=-1", "unit_amount"),
        ("currency=zzz&unit_amount=1", "currency"),
        (
            "currency=usd&unit_amount=1&recurring[interval]=fortnight",
            "recurring[interval]",
        ),
        (
            "currency=usd&unit_amount=1&recurring[interval]=month&recurring[interval_count]=13",
            "recurring[interval_count]",
        ),
        (
            "currency=usd&unit_amount=1&recurring[interval_count]=1",
            "recurring[interval]",
        ),
        (
            "currency=usd&unit_amount_decimal=1.5",
            "unit_amount_decimal",
        ),
    ] {
        let err = read_price_data(&parse(query), &[], Recurrence::Allowed).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{query}");
        assert_eq!(err.status, 400);
    }
    let err = read_price_data(
        &parse("currency=usd&unit_amount=1"),
        &[],
        Recurrence::Required,
    )
    .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("recurring"));
}

#[test]
fn price_objects() {
    let data = PriceData {
        currency: "usd".into(),
        unit_amount: 900,
        recurring: Some(Recurring {
            interval: "year".into(),
            interval_count: 1,
        }),
        tax_behavior: None,
    };
    let price = new_object("price_1", &data, "prod_1", &Extras::default(), 3, false);
    assert_eq!(price["type"], "recurring");
    assert_eq!(price["unit_amount_decimal"], "900");
    assert_eq!(price["recurring"]["interval"], "year");
    assert!(price["transform_quantity"].is_null());
    assert_eq!(interval_of(&price), Some(("year".into(), 1)));
    assert!(is_recurring(&price));
}
