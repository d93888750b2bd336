//! What of a Stripe object its reader looks at, so that a list page is parsed into only that.
//!
//! A sync reads pages of 100 whole Stripe objects and keeps a dozen fields of each. Parsed
//! into `serde_json::Value` trees in full, the pages took about half of the service's CPU in a
//! backfill (docs/BENCHMARKS.md, issue 17): every key and string of every object allocated,
//! then freed. A page parsed through [`Fields`] keeps the fields the reader of its type reads
//! (declared beside each reader, held to it by the tests at the end of `objects`) and skips the
//! rest while parsing: the result is the same `Value` shape, so the one lenient reader per
//! type reads it unchanged. Events and single objects are still parsed whole.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Which part of a JSON value to keep.
#[derive(Debug)]
pub enum Fields {
    /// The whole value.
    All,
    /// Of an object, only these keys, each kept as its own `Fields` says; of an array, each
    /// element so; a scalar, whole (an expandable field kept as `{id}` stays an id string).
    Only(&'static [(&'static str, Fields)]),
}

/// An object's `id` (an expandable field: the id string, or the expanded object's id).
pub const ID: Fields = Fields::Only(&[("id", Fields::All)]);

const NOTHING: Fields = Fields::Only(&[]);

impl Fields {
    /// What is kept under `key` (nothing of an object, a scalar whole, when `key` is not kept).
    pub fn get(&self, key: &str) -> &'static Fields {
        match self {
            Fields::All => &Fields::All,
            Fields::Only(keys) => keys
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(&NOTHING, |(_, fields)| fields),
        }
    }

    /// Parses a Stripe list page (`{"object": "list", "data": [...], "has_more": ...}`),
    /// keeping of each entry of `data` what `self` says and its `created` (where a sync's
    /// page ends in time, [`crate::sync`]), and the rest of the envelope whole.
    pub fn list_from_slice(&self, bytes: &[u8]) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let page = Keep::List(self).deserialize(&mut de)?;
        de.end()?;
        Ok(page)
    }

    /// Parses one value, keeping what `self` says.
    #[cfg(test)]
    pub fn from_slice(&self, bytes: &[u8]) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Keep::Value(self).deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

/// The seed: a value kept as `Fields` says, or a list page whose entries are.
#[derive(Clone, Copy)]
enum Keep<'f> {
    Value(&'f Fields),
    List(&'f Fields),
    /// The `data` of a list page: each entry kept as `Fields` says, and its `created`.
    Entries(&'f Fields),
    Entry(&'f Fields),
}

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self {
            Keep::Value(Fields::All) | Keep::Entry(Fields::All) => Value::deserialize(deserializer),
            keep => deserializer.deserialize_any(keep),
        }
    }
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // An array's elements are kept as the array is (a list page's entries, not the page).
        let each = match self {
            Keep::Entries(fields) => Keep::Entry(fields),
            Keep::Value(fields) | Keep::List(fields) | Keep::Entry(fields) => Keep::Value(fields),
        };
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(128));
        while let Some(element) = seq.next_element_seed(each)? {
            out.push(element);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            // A key kept whole is checked to be UTF-8; one matched against the reader's
            // names is one of them (ASCII); the rest are skipped unread, as their values are.
            let keep = match self {
                Keep::List(entries) if *key == *b"data" => {
                    Some(("data".into(), Keep::Entries(entries)))
                }
                Keep::List(_) | Keep::Value(Fields::All) | Keep::Entry(Fields::All) => {
                    Some((whole(key)?, Keep::Value(&Fields::All)))
                }
                Keep::Value(Fields::Only(keys))
                | Keep::Entry(Fields::Only(keys))
                | Keep::Entries(Fields::Only(keys)) => keys
                    .iter()
                    .find(|(k, _)| k.as_bytes() == &*key)
                    .map(|(k, fields)| ((*k).to_owned(), Keep::Value(fields)))
                    .or_else(|| {
                        (matches!(self, Keep::Entry(_)) && *key == *b"created")
                            .then(|| ("created".to_owned(), Keep::Value(&Fields::All)))
                    }),
                Keep::Entries(Fields::All) => Some((whole(key)?, Keep::Value(&Fields::All))),
            };
            match keep {
                Some((key, seed)) => {
                    let value = map.next_value_seed(seed)?;
                    out.insert(key, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// A key kept whole, as a string: an error if it is not UTF-8.
fn whole<E: serde::de::Error>(key: Cow<'_, [u8]>) -> Result<String, E> {
    match key {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes).map(str::to_owned),
        Cow::Owned(bytes) => String::from_utf8(bytes).map_err(|err| err.utf8_error()),
    }
    .map_err(|_| E::custom("an object key is not UTF-8"))
}

/// An object's key as bytes, borrowed from the input when it has no escapes: its escapes are
/// read, but it is not checked to be UTF-8 until it is kept ([`whole`]). Most keys of a
/// Stripe object are skipped, and checking each took a twentieth of a sync's CPU.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, [u8]>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, [u8]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_vec()))
    }

    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v.as_bytes()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.as_bytes().to_vec()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHAPE: Fields = Fields::Only(&[
        ("id", Fields::All),
        ("customer", ID),
        ("metadata", Fields::All),
        (
            "items",
            Fields::Only(&[
                ("data", Fields::Only(&[("id", Fields::All), ("price", ID)])),
                ("has_more", Fields::All),
            ]),
        ),
    ]);

    /// An entry of the page keeps its `created` too (a sync splits a list by it), whether its
    /// reader reads it or not; what is nested in an entry keeps only what its reader reads.
    #[test]
    fn a_page_keeps_what_its_entries_are_read_for_and_its_envelope() {
        let page = json!({
            "object": "list", "url": "/v1/subscriptions", "has_more": true,
            "data": [
                {"id": "sub_1", "customer": {"id": "cus_1", "email": "a@b.c", "metadata": {"x": "1"}},
                 "metadata": {"k": {"deep": [1, 2]}, "n": 2}, "status": "active", "created": 7,
                 "items": {"object": "list", "has_more": false, "data": [
                     {"id": "si_1", "price": "price_1", "quantity": 3, "created": 8},
                     {"id": "si_\u{e9}", "price": {"id": "price_2", "unit_amount": 5}}]}},
                {"id": "sub_2", "customer": "cus_2", "items": null, "\u{e9}t\"e": 1.5}
            ]
        });
        let kept = SHAPE.list_from_slice(page.to_string().as_bytes()).unwrap();
        assert_eq!(
            kept,
            json!({
                "object": "list", "url": "/v1/subscriptions", "has_more": true,
                "data": [
                    {"id": "sub_1", "customer": {"id": "cus_1"},
                     "metadata": {"k": {"deep": [1, 2]}, "n": 2}, "created": 7,
                     "items": {"has_more": false, "data": [
                         {"id": "si_1", "price": "price_1"},
                         {"id": "si_\u{e9}", "price": {"id": "price_2"}}]}},
                    {"id": "sub_2", "customer": "cus_2", "items": null}
                ]
            })
        );
        let price = SHAPE.get("items").get("data").get("price");
        assert!(matches!(price.get("id").get("x"), Fields::All));
        assert!(matches!(SHAPE.get("status"), Fields::Only([])));
    }

    #[test]
    fn what_is_not_json_is_an_error_as_before() {
        for bad in [
            "",
            "{",
            "{\"data\": [}",
            "[1] 2",
            "{\"data\": [{\"id\": \"a\\q\"}]}",
        ] {
            assert!(SHAPE.list_from_slice(bad.as_bytes()).is_err(), "{bad:?}");
            assert!(
                serde_json::from_slice::<Value>(bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(SHAPE.from_slice(b"7").unwrap(), json!(7));
    }

    #[test]
    fn keys_are_matched_as_their_escapes_read_and_kept_whole_only_as_utf_8() {
        // A kept key written with an escape is the key; a skipped key is skipped whatever
        // its bytes, as a skipped value is.
        let page = b"{\"has_more\": false, \"data\": [{\"i\\u0064\": \"sub_1\", \
            \"\xff\xfe\": 1, \"\\u00e9\": {\"id\": 2}, \"metadata\": {\"\\u00e9\": \"x\"}}]}";
        assert_eq!(
            SHAPE.list_from_slice(page).unwrap(),
            json!({"has_more": false, "data": [{"id": "sub_1", "metadata": {"\u{e9}": "x"}}]})
        );
        // Keys kept whole (the list's envelope, a kept object's) must be UTF-8.
        for bad in [
            &b"{\"has_more\": false, \"\xff\": 1, \"data\": []}"[..],
            b"{\"data\": [{\"id\": \"a\", \"metadata\": {\"\xff\": \"x\"}}]}",
        ] {
            assert!(SHAPE.list_from_slice(bad).is_err(), "{bad:?}");
        }
    }
}
