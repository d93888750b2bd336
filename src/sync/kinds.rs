//! The object types a historical sync reads, parents first, and where Stripe lists them.

/// A list whose entries Stripe embeds only partly (at most 10) in each parent object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nested {
    /// `items` of a subscription: the rest from `/subscription_items?subscription=`.
    SubscriptionItems,
    /// `lines` of an invoice: the rest from `/invoices/{id}/lines`.
    InvoiceLines,
}

/// One object type of a sync.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Its name in the API (`objects`) and in the job's progress.
    pub name: &'static str,
    /// Stripe's list under `/v1`; `None`: listed per mirrored customer (payment methods).
    pub path: Option<&'static str>,
    /// The event family its objects are read as (`customer.subscription`, ...).
    pub family: &'static str,
    /// Parameters every page of the list takes (e.g. `status=all`: canceled subscriptions too).
    pub fixed: &'static [(&'static str, &'static str)],
    pub nested: Option<Nested>,
    /// Its pages write only their own objects' rows and children (and the list counters of
    /// the writing connection's own shard): two pages' writes may then run at once without
    /// waiting for each other's locks. Not charges or refunds (they raise their payment's
    /// refunded total) nor payment methods (they touch their customer).
    pub pipelined: bool,
    /// Types of one stage (consecutive in [`KINDS`], the same number) are read at once:
    /// none is a parent of another, and each writes only its own rows. While one list waits
    /// for Stripe's next page, another's is parsed or written.
    pub stage: u8,
}

/// Every type, in the order a sync takes them (parents first: a price after its product, a
/// subscription after its customer, a refund after its charge). Subscriptions, invoices and
/// payment intents, each a customer's, are read at once ([`Kind::stage`]).
pub const KINDS: &[Kind] = &[
    Kind {
        name: "products",
        path: Some("/products"),
        family: "product",
        fixed: &[],
        pipelined: true,
        stage: 0,
        nested: None,
    },
    Kind {
        name: "prices",
        path: Some("/prices"),
        family: "price",
        fixed: &[],
        pipelined: true,
        stage: 1,
        nested: None,
    },
    Kind {
        name: "customers",
        path: Some("/customers"),
        family: "customer",
        fixed: &[],
        pipelined: true,
        stage: 2,
        nested: None,
    },
    Kind {
        name: "subscriptions",
        path: Some("/subscriptions"),
        family: "customer.subscription",
        fixed: &[("status", "all")],
        pipelined: true,
        stage: 3,
        nested: Some(Nested::SubscriptionItems),
    },
    Kind {
        name: "invoices",
        path: Some("/invoices"),
        family: "invoice",
        fixed: &[],
        pipelined: true,
        stage: 3,
        nested: Some(Nested::InvoiceLines),
    },
    Kind {
        name: "payment_intents",
        path: Some("/payment_intents"),
        family: "payment_intent",
        fixed: &[],
        pipelined: true,
        stage: 3,
        nested: None,
    },
    Kind {
        name: "charges",
        path: Some("/charges"),
        family: "charge",
        fixed: &[],
        pipelined: false,
        stage: 4,
        nested: None,
    },
    Kind {
        name: "refunds",
        path: Some("/refunds"),
        family: "refund",
        fixed: &[],
        pipelined: false,
        stage: 5,
        nested: None,
    },
    Kind {
        name: "checkout_sessions",
        path: Some("/checkout/sessions"),
        family: "checkout.session",
        fixed: &[],
        pipelined: true,
        stage: 6,
        nested: None,
    },
    Kind {
        name: "payment_links",
        path: Some("/payment_links"),
        family: "payment_link",
        fixed: &[],
        pipelined: true,
        stage: 7,
        nested: None,
    },
    Kind {
        name: "payment_methods",
        path: None,
        family: "payment_method",
        fixed: &[],
        pipelined: false,
        stage: 8,
        nested: None,
    },
];

pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The names, in sync order.
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name).collect()
}
