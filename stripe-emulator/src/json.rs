//! Small helpers for reading and writing the JSON objects the emulator stores and answers.

use serde_json::{Map, Value};

/// The `metadata` object of a stored object (empty if it has none).
pub fn metadata_of(object: &Value) -> Map<String, Value> {
    object
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Sets `object[key] = value` if `object` is a JSON object.
pub fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// Sets `object[key] = value`, or removes `key` when `value` is `null`: for the fields
/// Stripe's definition makes optional but not nullable, which Stripe omits when unset.
pub fn set_or_omit(object: &mut Value, key: &str, value: Value) {
    if value.is_null() {
        if let Some(map) = object.as_object_mut() {
            map.remove(key);
        }
    } else {
        set(object, key, value);
    }
}

/// Sets `object[a][b] = value`, creating `object[a]` if needed.
pub fn set_in(object: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for seg in parents {
        let Some(map) = node.as_object_mut() else {
            return;
        };
        let child = map
            .entry((*seg).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !child.is_object() {
            *child = Value::Object(Map::new());
        }
        node = child;
    }
    set(node, last, value);
}

/// The id an expandable field holds: the string itself, or the `id` of an expanded object.
pub fn id_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(map) => map.get("id").and_then(Value::as_str),
        _ => None,
    }
}

/// `object[key]` as a string, if it is one.
pub fn str_field<'v>(object: &'v Value, key: &str) -> Option<&'v str> {
    object.get(key).and_then(Value::as_str)
}

/// `object[key]` as an integer (0 if missing).
pub fn int_field(object: &Value, key: &str) -> i64 {
    object.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// A string value, or JSON `null` for `None`.
pub fn opt_str(value: Option<&str>) -> Value {
    value.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// About how many bytes `value` takes written as compact JSON (a little more, never much
/// less for ASCII text): to size an answer's buffer once instead of growing it.
pub fn size_hint(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 20,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| size_hint(v) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + size_hint(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_in_creates_parents() {
        let mut v = json!({"invoice_settings": null});
        set_in(
            &mut v,
            &["invoice_settings", "default_payment_method"],
            json!("pm_1"),
        );
        assert_eq!(v["invoice_settings"]["default_payment_method"], "pm_1");
    }

    #[test]
    fn the_size_hint_covers_the_written_json() {
        let value = json!({"id": "sub_1", "object": "subscription", "created": 1_700_000_000,
            "items": {"object": "list", "data": [{"id": "si_1", "quantity": 2, "price": null}],
                      "has_more": false}, "metadata": {"a": "b"}, "cancel_at_period_end": true,
            "amount": -12.5});
        let written = value.to_string().len();
        let hint = size_hint(&value);
        assert!(
            hint >= written && hint <= written * 2,
            "{hint} for {written}"
        );
    }
}
