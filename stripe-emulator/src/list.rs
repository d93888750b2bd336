//! Stripe list paging: `limit`, `starting_after`, `ending_before`, `has_more`, and the
//! common `created` filter.
//!
//! Resource modules collect the matching records newest first and hand them to
//! [`ListParams::page`], which renders `{"object":"list","data",...,"has_more","url"}`.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::form::{Param, Params};
use crate::store::{Record, Store};

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// Objects older than the one with this sequence number.
    StartingAfter(u64),
    /// Objects newer than the one with this sequence number.
    EndingBefore(u64),
}

/// The paging parameters of one list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListParams {
    /// Page size, 1..=100.
    pub limit: usize,
    cursor: Option<Cursor>,
}

impl ListParams {
    /// Reads `limit`, `starting_after` and `ending_before`; cursors are ids of `kind`
    /// objects (`label` names the type in "No such ..." messages).
    pub fn parse(params: &Params, store: &Store, kind: &str, label: &str) -> ApiResult<ListParams> {
        let limit = match params.integer(&["limit"])? {
            None => 10,
            Some(n) if n < 1 => {
                return Err(ApiError::invalid_request(
                    "This value must be greater than or equal to 1.",
                )
                .with_code("parameter_invalid_integer")
                .with_param("limit"));
            }
            Some(n) if n > 100 => {
                return Err(ApiError::invalid_request(
                    "This value must be less than or equal to 100.",
                )
                .with_code("parameter_invalid_integer")
                .with_param("limit"));
            }
            Some(n) => usize::try_from(n).unwrap_or(10),
        };
        let after = params
            .string(&["starting_after"])?
            .filter(|s| !s.is_empty());
        let before = params.string(&["ending_before"])?.filter(|s| !s.is_empty());
        let resolve = |id: &str, param: &str| {
            store
                .seq_of(kind, id)
                .ok_or_else(|| ApiError::resource_missing(label, id, param).with_status(404))
        };
        let cursor = match (after, before) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid_request(
                    "You may only specify one of these parameters: ending_before, starting_after.",
                )
                .with_code("parameters_exclusive")
                .with_param("ending_before"));
            }
            (Some(id), None) => Some(Cursor::StartingAfter(resolve(id, "starting_after")?)),
            (None, Some(id)) => Some(Cursor::EndingBefore(resolve(id, "ending_before")?)),
            (None, None) => None,
        };
        Ok(ListParams { limit, cursor })
    }

    /// One page of `records` (which must be newest first) as a Stripe list object.
    pub fn page<'a>(&self, url: &str, records: impl IntoIterator<Item = &'a Record>) -> Value {
        let records: Vec<&Record> = records.into_iter().collect();
        let (data, has_more): (Vec<&Record>, bool) = match self.cursor {
            None => (
                records.iter().take(self.limit).copied().collect(),
                records.len() > self.limit,
            ),
            Some(Cursor::StartingAfter(seq)) => {
                let older: Vec<&Record> = records.iter().filter(|r| r.seq < seq).copied().collect();
                let has_more = older.len() > self.limit;
                (older.into_iter().take(self.limit).collect(), has_more)
            }
            Some(Cursor::EndingBefore(seq)) => {
                // The `limit` objects just newer than the cursor, still newest first.
                let newer: Vec<&Record> = records.iter().filter(|r| r.seq > seq).copied().collect();
                let skip = newer.len().saturating_sub(self.limit);
                (newer[skip..].to_vec(), skip > 0)
            }
        };
        list_object(
            url,
            data.into_iter().map(|r| r.object.clone()).collect(),
            has_more,
        )
    }
}

/// `{"object":"list","data":...,"has_more":...,"url":...}`.
pub fn list_object(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

/// The `created` filter: `created=<ts>` or `created[gt|gte|lt|lte]=<ts>`.
pub fn created_filter(params: &Params) -> ApiResult<impl Fn(&Record) -> bool + use<>> {
    let mut bounds: Vec<(String, i64)> = Vec::new();
    match params.get(&["created"]) {
        None => {}
        Some(Param::Str(_)) => {
            if let Some(ts) = params.integer(&["created"])? {
                bounds.push(("eq".into(), ts));
            }
        }
        Some(Param::Map(map)) => {
            for op in map.keys() {
                if !matches!(op.as_str(), "gt" | "gte" | "lt" | "lte") {
                    return Err(ApiError::invalid_param(
                        &format!("created[{op}]"),
                        format!("Received unknown parameter: created[{op}]"),
                    )
                    .with_code("parameter_unknown"));
                }
                if let Some(ts) = params.integer(&["created", op])? {
                    bounds.push((op.clone(), ts));
                }
            }
        }
    }
    Ok(move |record: &Record| {
        let created = record
            .object
            .get("created")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        bounds.iter().all(|(op, ts)| match op.as_str() {
            "gt" => created > *ts,
            "gte" => created >= *ts,
            "lt" => created < *ts,
            "lte" => created <= *ts,
            _ => created == *ts,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kinds::CUSTOMER;

    fn store_with(n: usize) -> Store {
        let mut store = Store::new(false);
        for i in 0..n {
            store.insert(CUSTOMER, json!({ "id": format!("cus_{i}"), "created": i }));
        }
        store
    }

    fn ids(page: &Value) -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn list(store: &Store, query: &str) -> ApiResult<Value> {
        let params = Params::parse(&[query.as_bytes()])?;
        let lp = ListParams::parse(&params, store, CUSTOMER, "customer")?;
        Ok(lp.page("/v1/customers", store.live_newest_first(CUSTOMER)))
    }

    #[test]
    fn pages_forward_and_back() {
        let store = store_with(5);
        let first = list(&store, "limit=2").unwrap();
        assert_eq!(ids(&first), ["cus_4", "cus_3"]);
        assert_eq!(first["has_more"], true);
        assert_eq!(first["url"], "/v1/customers");
        let second = list(&store, "limit=2&starting_after=cus_3").unwrap();
        assert_eq!(ids(&second), ["cus_2", "cus_1"]);
        assert_eq!(second["has_more"], true);
        let third = list(&store, "limit=2&starting_after=cus_1").unwrap();
        assert_eq!(ids(&third), ["cus_0"]);
        assert_eq!(third["has_more"], false);
        let back = list(&store, "limit=2&ending_before=cus_1").unwrap();
        assert_eq!(ids(&back), ["cus_3", "cus_2"]);
        assert_eq!(back["has_more"], true);
        let back = list(&store, "limit=2&ending_before=cus_3").unwrap();
        assert_eq!(ids(&back), ["cus_4"]);
        assert_eq!(back["has_more"], false);
        assert_eq!(ids(&list(&store, "").unwrap()).len(), 5);
    }

    #[test]
    fn bad_paging_is_rejected() {
        let store = store_with(1);
        for (query, code, param, status) in [
            ("limit=0", "parameter_invalid_integer", "limit", 400),
            ("limit=101", "parameter_invalid_integer", "limit", 400),
            ("limit=x", "parameter_invalid_integer", "limit", 400),
            (
                "starting_after=cus_0&ending_before=cus_0",
                "parameters_exclusive",
                "ending_before",
                400,
            ),
            (
                "starting_after=cus_nope",
                "resource_missing",
                "starting_after",
                404,
            ),
        ] {
            let err = list(&store, query).unwrap_err();
            assert_eq!(err.code.as_deref(), Some(code), "{query}");
            assert_eq!(err.param.as_deref(), Some(param), "{query}");
            assert_eq!(err.status, status, "{query}");
        }
    }

    #[test]
    fn created_bounds() {
        let store = store_with(5);
        let params = Params::parse(&[b"created[gte]=1&created[lt]=3"]).unwrap();
        let filter = created_filter(&params).unwrap();
        let n = store
            .live_newest_first(CUSTOMER)
            .filter(|r| filter(r))
            .count();
        assert_eq!(n, 2);
        let params = Params::parse(&[b"created[foo]=1"]).unwrap();
        assert!(created_filter(&params).is_err());
    }
}
