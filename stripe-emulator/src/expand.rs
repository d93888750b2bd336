//! `expand[]`: replacing id references with the objects they name.
//!
//! Paths are dotted (`invoice_settings.default_payment_method`, or `data.customer` on lists);
//! each step that holds an id is replaced by a copy of the stored object, looked up by the
//! id's prefix, and later steps continue inside it.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::store::Store;

/// Stripe's limit on expansion depth.
const MAX_DEPTH: usize = 4;

/// Applies every path in `paths` to `value`.
pub fn apply(store: &Store, value: &mut Value, paths: &[String]) -> ApiResult<()> {
    let object = value
        .get("object")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let object = object.as_deref();
    let paged = matches!(object, Some("list" | "search_result"));
    for path in paths {
        // A search asks for its `total_count` this way (answered by the search itself).
        if object == Some("search_result") && path == "total_count" {
            continue;
        }
        let segs: Vec<&str> = path.split('.').collect();
        let steps = if paged {
            segs.len().saturating_sub(1)
        } else {
            segs.len()
        };
        if steps > MAX_DEPTH {
            return Err(ApiError::invalid_param(
                "expand",
                format!(
                    "You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}"
                ),
            ));
        }
        expand_path(store, value, &segs, path)?;
    }
    Ok(())
}

fn not_expandable(path: &str) -> ApiError {
    ApiError::invalid_param(
        "expand",
        format!("This property cannot be expanded ({path})."),
    )
}

fn expand_path(store: &Store, node: &mut Value, segs: &[&str], path: &str) -> ApiResult<()> {
    let Some((field, rest)) = segs.split_first() else {
        return Ok(());
    };
    let Some(obj) = node.as_object_mut() else {
        return Err(not_expandable(path));
    };
    let Some(child) = obj.get_mut(*field) else {
        return Err(not_expandable(path));
    };
    match child {
        Value::Array(items) if *field == "data" => {
            for item in items {
                expand_path(store, item, rest, path)?;
            }
            Ok(())
        }
        // An array of references (e.g. `discounts`): each element is expanded.
        Value::Array(items) => {
            for item in items {
                expand_value(store, item, rest, path)?;
            }
            Ok(())
        }
        _ => expand_value(store, child, rest, path),
    }
}

/// Expands one value that is (or holds) a reference, then continues with `rest` inside it.
fn expand_value(store: &Store, child: &mut Value, rest: &[&str], path: &str) -> ApiResult<()> {
    match child {
        Value::Null => Ok(()),
        Value::String(id) => {
            if let Some(record) = store.find_any(id) {
                *child = record.object.clone();
                expand_path(store, child, rest, path)
            } else if rest.is_empty() {
                // An id the emulator does not keep (e.g. a fixture's configuration id):
                // left as it is.
                Ok(())
            } else {
                Err(not_expandable(path))
            }
        }
        Value::Object(_) if rest.is_empty() => Ok(()),
        Value::Object(_) => expand_path(store, child, rest, path),
        _ => Err(not_expandable(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kinds;
    use serde_json::json;

    #[test]
    fn expands_ids_objects_and_lists() {
        let mut store = Store::new(false);
        store.insert(
            kinds::PAYMENT_METHOD,
            json!({"id": "pm_1", "object": "payment_method", "customer": "cus_1"}),
        );
        store.insert(
            kinds::CUSTOMER,
            json!({"id": "cus_1", "object": "customer"}),
        );
        let mut customer =
            json!({"id": "cus_1", "invoice_settings": {"default_payment_method": "pm_1"}});
        apply(
            &store,
            &mut customer,
            &["invoice_settings.default_payment_method.customer".into()],
        )
        .unwrap();
        assert_eq!(
            customer["invoice_settings"]["default_payment_method"]["object"],
            "payment_method"
        );
        assert_eq!(
            customer["invoice_settings"]["default_payment_method"]["customer"]["object"],
            "customer"
        );

        let mut list = json!({"object": "list", "data": [{"id": "pm_1", "customer": "cus_1"}, {"id": "pm_2", "customer": null}]});
        apply(&store, &mut list, &["data.customer".into()]).unwrap();
        assert_eq!(list["data"][0]["customer"]["id"], "cus_1");
        assert!(list["data"][1]["customer"].is_null());

        let mut sub = json!({"discounts": ["cus_1", "nope_1"]});
        apply(&store, &mut sub, &["discounts".into()]).unwrap();
        assert_eq!(sub["discounts"][0]["object"], "customer");
        assert_eq!(sub["discounts"][1], "nope_1");

        let mut customer = json!({"id": "cus_1", "email": "x"});
        let err = apply(&store, &mut customer, &["nope".into()]).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.param.as_deref(), Some("expand"));
        assert!(apply(&store, &mut customer, &["a.b.c.d.e".into()]).is_err());
    }
}
