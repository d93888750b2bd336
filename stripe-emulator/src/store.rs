//! The in-memory object store of one Stripe account (one secret key, optionally one
//! `Stripe-Account`).
//!
//! Objects are kept as the JSON Stripe would return, per object type (the fixture resource
//! name, e.g. `customer`) and id, each with a creation sequence number so lists order newest
//! first even when objects share a `created` second. A [`Record`] also carries `internal`
//! state that is never sent to clients (e.g. how a test card declines).
//!
//! Memory: a record created, changed or read is kept parsed (a `serde_json::Value`, several
//! times its JSON size) only until [`compact`](Store::compact), which every request's commit
//! calls; at rest it is its compact JSON text, parsed again when next read. Lists seek in an
//! ordered index per type ([`ListKey`]: `created`, then creation order), so a page parses
//! only the records it walks.
//!
//! The store also keeps a journal of the objects changed since the last
//! [`drain_changes`](Store::drain_changes): every mutable access (`insert*`, `get_mut`,
//! `get_live_mut`, `remove`) notes the object's state before its first change, so the
//! events module can turn each request's changes into Stripe events without the resource
//! handlers having to announce them (and without any change going unannounced).

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// Object types, named as in Stripe's fixtures and `object` fields.
pub mod kinds {
    /// `customer`.
    pub const CUSTOMER: &str = "customer";
    /// `payment_method`.
    pub const PAYMENT_METHOD: &str = "payment_method";
    /// `billing_portal.session`.
    pub const BILLING_PORTAL_SESSION: &str = "billing_portal.session";
    /// `product`.
    pub const PRODUCT: &str = "product";
    /// `price`.
    pub const PRICE: &str = "price";
    /// `coupon`.
    pub const COUPON: &str = "coupon";
    /// `payment_intent`.
    pub const PAYMENT_INTENT: &str = "payment_intent";
    /// `charge`.
    pub const CHARGE: &str = "charge";
    /// `refund`.
    pub const REFUND: &str = "refund";
    /// `setup_intent`.
    pub const SETUP_INTENT: &str = "setup_intent";
    /// `subscription` (its items are kept inside it).
    pub const SUBSCRIPTION: &str = "subscription";
    /// `invoice`.
    pub const INVOICE: &str = "invoice";
    /// `invoiceitem`.
    pub const INVOICE_ITEM: &str = "invoiceitem";
    /// `checkout.session`.
    pub const CHECKOUT_SESSION: &str = "checkout.session";
    /// `payment_link`.
    pub const PAYMENT_LINK: &str = "payment_link";
    /// `webhook_endpoint`.
    pub const WEBHOOK_ENDPOINT: &str = "webhook_endpoint";
    /// `discount`.
    pub const DISCOUNT: &str = "discount";
    /// `promotion_code`.
    pub const PROMOTION_CODE: &str = "promotion_code";
    /// `event` (not journaled: events are what the journal turns into).
    pub const EVENT: &str = "event";
}

/// Id prefixes and the object type each denotes, for expansion of id references.
const ID_PREFIXES: &[(&str, &str)] = &[
    ("cus_", kinds::CUSTOMER),
    ("pm_", kinds::PAYMENT_METHOD),
    ("bps_", kinds::BILLING_PORTAL_SESSION),
    ("prod_", kinds::PRODUCT),
    ("price_", kinds::PRICE),
    ("pi_", kinds::PAYMENT_INTENT),
    ("ch_", kinds::CHARGE),
    ("re_", kinds::REFUND),
    ("seti_", kinds::SETUP_INTENT),
    ("sub_", kinds::SUBSCRIPTION),
    ("in_", kinds::INVOICE),
    ("ii_", kinds::INVOICE_ITEM),
    ("cs_", kinds::CHECKOUT_SESSION),
    ("plink_", kinds::PAYMENT_LINK),
    ("we_", kinds::WEBHOOK_ENDPOINT),
    ("di_", kinds::DISCOUNT),
    ("promo_", kinds::PROMOTION_CODE),
    ("evt_", kinds::EVENT),
];

/// A record as [`Store::walk_stored`] yields it.
#[derive(Debug, Clone, Copy)]
pub enum Stored<'a> {
    /// Parsed (in use).
    Parsed(&'a Record),
    /// At rest: its object's compact JSON.
    Resting(&'a str),
}

/// The ids of `collection` within `walk`, in walking order (see [`Store::walk`]).
fn walk_ids(collection: &Collection, walk: Walk) -> Box<dyn Iterator<Item = &str> + '_> {
    let mut low: Bound<ListKey> = Bound::Included((walk.created_min, 0));
    let mut high: Bound<ListKey> = Bound::Included((walk.created_max, u64::MAX));
    if let Some(key) = walk.older_than
        && key <= (walk.created_max, u64::MAX)
    {
        high = Bound::Excluded(key);
    }
    if let Some(key) = walk.newer_than
        && key >= (walk.created_min, 0)
    {
        low = Bound::Excluded(key);
    }
    // `BTreeMap::range` panics on inverted bounds: answer nothing instead.
    let empty = match (low, high) {
        (Bound::Included(l), Bound::Included(h)) => l > h,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(h))
        | (Bound::Excluded(l), Bound::Included(h)) => l >= h,
        _ => false,
    };
    if empty {
        return Box::new(std::iter::empty());
    }
    let range = collection
        .order
        .range((low, high))
        .map(|(_, id)| -> &str { id });
    if walk.newer_than.is_some() {
        Box::new(range)
    } else {
        Box::new(range.rev())
    }
}

/// What the compact JSON of an object whose top-level `field` is the string `value`
/// contains: `"field":"value"` (as serde_json writes it).
pub fn field_needle(field: &str, value: &str) -> String {
    format!("{}:{}", Value::from(field), Value::from(value))
}

/// The object type an id denotes, judged by its prefix.
pub fn kind_for_id(id: &str) -> Option<&'static str> {
    ID_PREFIXES
        .iter()
        .find(|(prefix, _)| id.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

/// Where a record sits in its type's list order: its `created` second when stored, then its
/// creation sequence number. Lists walk this order backwards (newest first).
pub type ListKey = (i64, u64);

/// One stored object.
#[derive(Debug, Clone)]
pub struct Record {
    /// Creation order within the store (monotonic).
    pub seq: u64,
    /// The object's `created` when it was stored (0 if it has none): with `seq`, its place
    /// in list order.
    pub created: i64,
    /// The object as Stripe returns it.
    pub object: Value,
    /// State the emulator keeps for itself; never sent to clients.
    pub internal: Map<String, Value>,
}

impl Record {
    /// The record's place in list order.
    pub fn list_key(&self) -> ListKey {
        (self.created, self.seq)
    }

    /// True for a tombstone (`"deleted": true`), which retrieval still returns but lists skip.
    pub fn is_deleted(&self) -> bool {
        self.object
            .get("deleted")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

impl Record {
    fn empty() -> Record {
        Record {
            seq: 0,
            created: 0,
            object: Value::Null,
            internal: Map::new(),
        }
    }
}

/// What a slot answers if it ever held nothing (it cannot: every slot is made hot).
static EMPTY: LazyLock<Record> = LazyLock::new(Record::empty);

/// A record at rest: the object as compact JSON (a `serde_json::Value` costs several times
/// its JSON size: every object, even a small nested one, is a B-tree with its keys on the
/// heap), parsed again when read.
#[derive(Debug)]
struct Frozen {
    seq: u64,
    created: i64,
    json: Box<str>,
    internal: Map<String, Value>,
    /// The record parsed from `json`, once read; dropped again at the next compaction.
    thawed: OnceCell<Record>,
}

impl Frozen {
    fn thaw(&self) -> Record {
        Record {
            seq: self.seq,
            created: self.created,
            object: serde_json::from_str(&self.json).unwrap_or(Value::Null),
            internal: self.internal.clone(),
        }
    }

    fn into_record(self) -> Record {
        match self.thawed.into_inner() {
            Some(record) => record,
            None => Record {
                seq: self.seq,
                created: self.created,
                object: serde_json::from_str(&self.json).unwrap_or(Value::Null),
                internal: self.internal,
            },
        }
    }
}

/// One stored record: hot (parsed: created or changed since the last
/// [`compact`](Store::compact)) or frozen (at rest).
#[derive(Debug)]
struct Slot {
    hot: Option<Record>,
    frozen: Option<Frozen>,
}

impl Slot {
    fn new(record: Record) -> Slot {
        Slot {
            hot: Some(record),
            frozen: None,
        }
    }

    fn seq(&self) -> u64 {
        match (&self.hot, &self.frozen) {
            (Some(record), _) => record.seq,
            (None, Some(frozen)) => frozen.seq,
            (None, None) => 0,
        }
    }

    fn list_key(&self) -> ListKey {
        match (&self.hot, &self.frozen) {
            (Some(record), _) => record.list_key(),
            (None, Some(frozen)) => (frozen.created, frozen.seq),
            (None, None) => (0, 0),
        }
    }

    /// The record, parsed if need be; `true` if it was parsed now (the caller notes the
    /// slot for the next compaction).
    fn read(&self) -> (&Record, bool) {
        match (&self.hot, &self.frozen) {
            (Some(record), _) => (record, false),
            (None, Some(frozen)) => {
                let fresh = frozen.thawed.get().is_none();
                (frozen.thawed.get_or_init(|| frozen.thaw()), fresh)
            }
            (None, None) => (&EMPTY, false),
        }
    }

    /// The record, for changing it: the slot is hot until the next compaction.
    fn make_hot(&mut self) -> &mut Record {
        let frozen = self.frozen.take();
        self.hot
            .get_or_insert_with(|| frozen.map_or_else(Record::empty, Frozen::into_record))
    }

    /// The JSON of a record at rest (also when parsed for reading: unchanged since).
    fn resting_json(&self) -> Option<&str> {
        match (&self.hot, &self.frozen) {
            (None, Some(frozen)) => Some(&frozen.json),
            _ => None,
        }
    }

    fn into_record(self) -> Record {
        match (self.hot, self.frozen) {
            (Some(record), _) => record,
            (None, Some(frozen)) => frozen.into_record(),
            (None, None) => Record::empty(),
        }
    }

    /// Puts the slot to rest: a hot record is written as compact JSON, a parsed copy is
    /// dropped.
    fn freeze(&mut self) {
        if let Some(record) = self.hot.take() {
            match serde_json::to_string(&record.object) {
                Ok(json) => {
                    self.frozen = Some(Frozen {
                        seq: record.seq,
                        created: record.created,
                        json: json.into_boxed_str(),
                        internal: record.internal,
                        thawed: OnceCell::new(),
                    });
                }
                Err(_) => self.hot = Some(record),
            }
        } else if let Some(frozen) = &mut self.frozen {
            frozen.thawed.take();
        }
    }
}

/// All objects of one type: by id, and ordered by [`ListKey`] so that a list page seeks to
/// its cursor and `created` bounds instead of walking the whole type.
#[derive(Debug, Default)]
struct Collection {
    by_id: HashMap<Box<str>, Slot>,
    order: BTreeMap<ListKey, Box<str>>,
}

/// Which records of a type a list walks: `created` bounds and a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Lowest `created` included (`i64::MIN`: no bound).
    pub created_min: i64,
    /// Highest `created` included (`i64::MAX`: no bound).
    pub created_max: i64,
    /// Only records before (older than) this key, walking newest first.
    pub older_than: Option<ListKey>,
    /// Only records after (newer than) this key, walking oldest first.
    pub newer_than: Option<ListKey>,
}

impl Default for Walk {
    fn default() -> Self {
        Walk {
            created_min: i64::MIN,
            created_max: i64::MAX,
            older_than: None,
            newer_than: None,
        }
    }
}

/// One object's change, from its state before the first change of a request to its state
/// when the change was taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The object type (a [`kinds`] name).
    pub kind: String,
    /// The object id.
    pub id: String,
    /// The object before (`None`: it did not exist).
    pub before: Option<Value>,
    /// The object after (`None`: it was removed).
    pub after: Option<Value>,
    /// When it was first changed (created, for a new object), on a clock that orders all
    /// changes of the store.
    pub first: u64,
    /// When it was last changed.
    pub last: u64,
}

/// A journaled object: its state before the first change, and when it was first and last
/// changed.
#[derive(Debug)]
struct Touched {
    before: Option<Value>,
    first: u64,
    last: u64,
}

/// Objects changed since the last drain.
#[derive(Debug, Default)]
struct Journal {
    touched: HashMap<(String, String), Touched>,
    clock: u64,
    /// Changes taken early with [`Store::flush_change`], in order.
    flushed: Vec<Change>,
}

/// The objects of one account.
#[derive(Debug, Default)]
pub struct Store {
    seq: u64,
    collections: HashMap<&'static str, Collection>,
    singletons: HashMap<&'static str, String>,
    journal: Journal,
    /// Whether changes are journaled (off while seeding: seeded objects announce nothing).
    quiet: bool,
    /// Records parsed or changed since the last [`compact`](Store::compact).
    warm: RefCell<Vec<(&'static str, Box<str>)>>,
    /// Whether this store serves a live-mode key (`sk_live_`, `rk_live_`).
    pub livemode: bool,
}

impl Store {
    /// An empty store.
    pub fn new(livemode: bool) -> Self {
        Store {
            livemode,
            ..Store::default()
        }
    }

    /// Turns the journal on or off (off: changes are not noted, so they announce nothing).
    pub fn set_journal(&mut self, on: bool) {
        self.quiet = !on;
    }

    /// Removes every object (keeps `livemode`).
    pub fn clear(&mut self) {
        let livemode = self.livemode;
        *self = Store::new(livemode);
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Notes that `kind`/`id` is about to change (or be created or removed).
    fn note(&mut self, kind: &str, id: &str) {
        if kind == kinds::EVENT || self.quiet {
            return;
        }
        let clock = self.journal.clock;
        self.journal.clock += 1;
        let key = (kind.to_owned(), id.to_owned());
        if let Some(touched) = self.journal.touched.get_mut(&key) {
            touched.last = clock;
            return;
        }
        let before = self.get(kind, id).map(|r| r.object.clone());
        self.journal.touched.insert(
            key,
            Touched {
                before,
                first: clock,
                last: clock,
            },
        );
    }

    /// The changes since the last drain, those taken early with
    /// [`flush_change`](Store::flush_change) first, then by their last change, and forgets
    /// them. Objects whose `object` did not change are included (`before == after`);
    /// callers skip them.
    pub fn drain_changes(&mut self) -> Vec<Change> {
        let mut changes = std::mem::take(&mut self.journal.flushed);
        if self.journal.touched.is_empty() {
            return changes;
        }
        let mut touched: Vec<_> = self.journal.touched.drain().collect();
        touched.sort_by_key(|(_, t)| t.last);
        for ((kind, id), t) in touched {
            let after = self.get(&kind, &id).map(|r| r.object.clone());
            changes.push(Change {
                kind,
                id,
                before: t.before,
                after,
                first: t.first,
                last: t.last,
            });
        }
        changes
    }

    /// Counts `kind`/`id` as changed now, for the order its events are announced in (e.g.
    /// an invoice whose payment failed, after the payment's own events).
    pub fn touch(&mut self, kind: &str, id: &str) {
        if self.get(kind, id).is_some() {
            self.note(kind, id);
        }
    }

    /// Takes the change of one object now (as it stands), so that its event shows this
    /// intermediate state (e.g. an invoice as a draft, before it is finalized in the same
    /// request). Later changes to it are journaled afresh.
    pub fn flush_change(&mut self, kind: &str, id: &str) {
        let key = (kind.to_owned(), id.to_owned());
        if let Some(t) = self.journal.touched.remove(&key) {
            let after = self.get(kind, id).map(|r| r.object.clone());
            self.journal.flushed.push(Change {
                kind: key.0,
                id: key.1,
                before: t.before,
                after,
                first: t.first,
                last: t.last,
            });
        }
    }

    /// Stores a new object under its `id`, with internal state, as the newest of its type.
    /// An object already stored under that id is replaced.
    pub fn insert_with(
        &mut self,
        kind: &'static str,
        object: Value,
        internal: Map<String, Value>,
    ) -> &mut Record {
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.note(kind, &id);
        let seq = self.next_seq();
        let created = object.get("created").and_then(Value::as_i64).unwrap_or(0);
        let collection = self.collections.entry(kind).or_default();
        if let Some(old) = collection.by_id.remove(id.as_str()) {
            collection.order.remove(&old.list_key());
        }
        let id: Box<str> = id.into_boxed_str();
        collection.order.insert((created, seq), id.clone());
        self.warm.get_mut().push((kind, id.clone()));
        let record = Record {
            seq,
            created,
            object,
            internal,
        };
        collection
            .by_id
            .entry(id)
            .insert_entry(Slot::new(record))
            .into_mut()
            .make_hot()
    }

    /// Stores a new object under its `id` as the newest of its type.
    pub fn insert(&mut self, kind: &'static str, object: Value) -> &mut Record {
        self.insert_with(kind, object, Map::new())
    }

    /// The record of `id`, tombstones included.
    pub fn get(&self, kind: &str, id: &str) -> Option<&Record> {
        let (kind, collection) = self.collections.get_key_value(kind)?;
        let (id, slot) = collection.by_id.get_key_value(id)?;
        Some(self.read(kind, id, slot))
    }

    /// A slot's record, noting a freshly parsed one for the next compaction.
    fn read<'a>(&'a self, kind: &'static str, id: &str, slot: &'a Slot) -> &'a Record {
        let (record, fresh) = slot.read();
        if fresh {
            self.warm.borrow_mut().push((kind, id.into()));
        }
        record
    }

    /// The record of `id` for changing it in place, tombstones included.
    pub fn get_mut(&mut self, kind: &str, id: &str) -> Option<&mut Record> {
        if self.get(kind, id).is_some() {
            self.note(kind, id);
        }
        let (kind, collection) = self
            .collections
            .iter_mut()
            .find(|(name, _)| **name == kind)?;
        let slot = collection.by_id.get_mut(id)?;
        self.warm.get_mut().push((kind, id.into()));
        Some(slot.make_hot())
    }

    /// Puts every record parsed or changed since the last call back to rest as compact
    /// JSON: called once a request's changes are committed, so that a big
    /// account costs about its JSON size in memory.
    pub fn compact(&mut self) {
        for (kind, id) in std::mem::take(self.warm.get_mut()) {
            if let Some(slot) = self
                .collections
                .get_mut(kind)
                .and_then(|c| c.by_id.get_mut(&*id))
            {
                slot.freeze();
            }
        }
    }

    /// The record of `id` unless it is missing or deleted.
    pub fn get_live(&self, kind: &str, id: &str) -> Option<&Record> {
        self.get(kind, id).filter(|r| !r.is_deleted())
    }

    /// The record of `id` for changing it in place, unless it is missing or deleted.
    pub fn get_live_mut(&mut self, kind: &str, id: &str) -> Option<&mut Record> {
        self.get_mut(kind, id).filter(|r| !r.is_deleted())
    }

    /// Removes an object for good (no tombstone).
    pub fn remove(&mut self, kind: &str, id: &str) -> Option<Record> {
        if self.get(kind, id).is_some() {
            self.note(kind, id);
        }
        let collection = self.collections.get_mut(kind)?;
        let slot = collection.by_id.remove(id)?;
        collection.order.remove(&slot.list_key());
        Some(slot.into_record())
    }

    /// Creation sequence number of `id`, tombstones included.
    pub fn seq_of(&self, kind: &str, id: &str) -> Option<u64> {
        self.collections.get(kind)?.by_id.get(id).map(Slot::seq)
    }

    /// The list-order key of `id`, tombstones included (for list cursors).
    pub fn list_key_of(&self, kind: &str, id: &str) -> Option<ListKey> {
        self.collections
            .get(kind)?
            .by_id
            .get(id)
            .map(Slot::list_key)
    }

    /// All records of a type, newest first, tombstones included.
    pub fn newest_first<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Record> + 'a {
        self.walk(kind, Walk::default())
    }

    /// The records of a type within `walk`'s bounds, tombstones included, in O(log n) to
    /// the first one: newest first, or oldest first when `walk.newer_than` is set (an
    /// `ending_before` page, which the caller turns around).
    pub fn walk<'a>(&'a self, kind: &str, walk: Walk) -> Box<dyn Iterator<Item = &'a Record> + 'a> {
        self.walk_containing(kind, walk, Vec::new())
    }

    /// As [`walk`](Store::walk), but records at rest whose JSON lacks one of `needles`
    /// (see [`field_needle`]) are skipped without being parsed. A record that has them may
    /// still not match (a needle can occur in a nested object): callers check the fields.
    pub fn walk_containing<'a>(
        &'a self,
        kind: &str,
        walk: Walk,
        needles: Vec<String>,
    ) -> Box<dyn Iterator<Item = &'a Record> + 'a> {
        let Some((kind, collection)) = self.collections.get_key_value(kind) else {
            return Box::new(std::iter::empty());
        };
        let kind: &'static str = kind;
        Box::new(walk_ids(collection, walk).filter_map(move |id| {
            let slot = collection.by_id.get(id)?;
            if let Some(json) = slot.resting_json()
                && !needles.iter().all(|needle| json.contains(needle.as_str()))
            {
                return None;
            }
            Some(self.read(kind, id, slot))
        }))
    }

    /// As [`walk`](Store::walk), without parsing records at rest: they are yielded as their
    /// JSON (for a page that only copies them out).
    pub fn walk_stored<'a>(
        &'a self,
        kind: &str,
        walk: Walk,
    ) -> Box<dyn Iterator<Item = Stored<'a>> + 'a> {
        let Some(collection) = self.collections.get(kind) else {
            return Box::new(std::iter::empty());
        };
        Box::new(walk_ids(collection, walk).filter_map(move |id| {
            let slot = collection.by_id.get(id)?;
            Some(match (&slot.hot, &slot.frozen) {
                (Some(record), _) => Stored::Parsed(record),
                (None, Some(frozen)) => match frozen.thawed.get() {
                    Some(record) => Stored::Parsed(record),
                    None => Stored::Resting(&frozen.json),
                },
                (None, None) => return None,
            })
        }))
    }

    /// Calls `visit` with every live record of a type, newest first, without keeping the
    /// records at rest parsed afterwards (for a pass over a whole type, e.g. the balance or
    /// a search, that should not hold every object parsed at once).
    pub fn scan(&self, kind: &str, mut visit: impl FnMut(&Record)) {
        let Some(collection) = self.collections.get(kind) else {
            return;
        };
        for id in collection.order.values().rev() {
            let Some(slot) = collection.by_id.get(&**id) else {
                continue;
            };
            let passing;
            let record = match (&slot.hot, &slot.frozen) {
                (Some(record), _) => record,
                (None, Some(frozen)) => match frozen.thawed.get() {
                    Some(record) => record,
                    None => {
                        passing = frozen.thaw();
                        &passing
                    }
                },
                (None, None) => continue,
            };
            if !record.is_deleted() {
                visit(record);
            }
        }
    }

    /// The live records of a type whose top-level string `field`s equal the values given,
    /// newest first; records at rest that cannot match are skipped unparsed.
    pub fn live_where<'a>(
        &'a self,
        kind: &str,
        fields: &[(&str, &str)],
    ) -> impl Iterator<Item = &'a Record> + 'a {
        let needles: Vec<String> = fields.iter().map(|(f, v)| field_needle(f, v)).collect();
        let wanted: Vec<(String, String)> = fields
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect();
        self.walk_containing(kind, Walk::default(), needles)
            .filter(move |r| {
                !r.is_deleted()
                    && wanted
                        .iter()
                        .all(|(f, v)| r.object.get(f).and_then(Value::as_str) == Some(v.as_str()))
            })
    }

    /// All live (not deleted) records of a type, newest first.
    pub fn live_newest_first<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Record> + 'a {
        self.newest_first(kind).filter(|r| !r.is_deleted())
    }

    /// Ids of all live records of a type matching `pred`.
    pub fn ids_where(&self, kind: &str, pred: impl Fn(&Record) -> bool) -> Vec<String> {
        self.live_newest_first(kind)
            .filter(|r| pred(r))
            .filter_map(|r| {
                r.object
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Number of records of a type, tombstones included.
    pub fn count(&self, kind: &str) -> usize {
        self.collections.get(kind).map_or(0, |c| c.by_id.len())
    }

    /// Removes the oldest records of a type until at most `keep` remain.
    pub fn trim_oldest(&mut self, kind: &str, keep: usize) {
        let Some(collection) = self.collections.get_mut(kind) else {
            return;
        };
        while collection.by_id.len() > keep {
            let Some((_, id)) = collection.order.pop_first() else {
                break;
            };
            collection.by_id.remove(&*id);
        }
    }

    /// Makes every record of a type `seconds` older (its `created`, in the object and in
    /// list order); answers how many.
    pub fn shift_created(&mut self, kind: &str, seconds: i64) -> usize {
        let Some((kind, collection)) = self.collections.iter_mut().find(|(name, _)| **name == kind)
        else {
            return 0;
        };
        let kind: &'static str = kind;
        let order = std::mem::take(&mut collection.order);
        for ((created, seq), id) in order {
            let created = created.saturating_sub(seconds);
            if let Some(slot) = collection.by_id.get_mut(&*id) {
                let record = slot.make_hot();
                record.created = created;
                if let Some(map) = record.object.as_object_mut()
                    && map.contains_key("created")
                {
                    map.insert("created".into(), Value::from(created));
                }
                self.warm.get_mut().push((kind, id.clone()));
            }
            collection.order.insert((created, seq), id);
        }
        collection.order.len()
    }

    /// Any stored object by id, its type judged by the id's prefix.
    pub fn find_any(&self, id: &str) -> Option<&Record> {
        self.get(kind_for_id(id)?, id)
    }

    /// A per-account value created once on first use (e.g. the default billing portal
    /// configuration id).
    pub fn singleton(&mut self, name: &'static str, init: impl FnOnce() -> String) -> String {
        self.singletons.entry(name).or_insert_with(init).clone()
    }
}

#[cfg(test)]
mod tests;
