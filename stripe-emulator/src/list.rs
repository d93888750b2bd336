//! Stripe list paging: `limit`, `starting_after`, `ending_before`, `has_more`, and the
//! common `created` filter (`created=<ts>` or `created[gt|gte|lt|lte]=<ts>`).
//!
//! Lists are in Stripe's order: newest first by `created`, then by creation order (so objects
//! of the same second keep a stable order and no cursor skips or repeats one). A resource
//! module asks [`ListParams::walk`] for the store's records from the page's cursor within
//! its `created` bounds (a seek in the store's ordered index, not a walk of the whole
//! type), filters them by its own parameters, and hands them to [`ListParams::page`], which
//! takes `limit` + 1 of them and renders `{"object":"list","data",...,"has_more","url"}`.
//! A page therefore costs O(limit) plus the records its own filters skip.

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::form::{Param, Params};
use crate::store::{ListKey, Record, Store, Stored, Walk, field_needle};

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    /// Objects older than the one with this key.
    StartingAfter(ListKey),
    /// Objects newer than the one with this key.
    EndingBefore(ListKey),
}

/// The paging parameters of one list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListParams {
    /// Page size, 1..=100.
    pub limit: usize,
    cursor: Option<Cursor>,
    created: Created,
    kind: &'static str,
}

/// `created` bounds, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Created {
    /// Lowest `created` listed.
    pub min: i64,
    /// Highest `created` listed.
    pub max: i64,
}

impl Default for Created {
    fn default() -> Self {
        Created {
            min: i64::MIN,
            max: i64::MAX,
        }
    }
}

impl Created {
    /// Reads `created=<ts>` or `created[gt|gte|lt|lte]=<ts>` (absent: unbounded).
    pub fn parse(params: &Params) -> ApiResult<Created> {
        let mut bounds = Created::default();
        match params.get(&["created"]) {
            None => {}
            Some(Param::Str(_)) => {
                if let Some(ts) = params.integer(&["created"])? {
                    bounds.min = ts;
                    bounds.max = ts;
                }
            }
            Some(Param::Map(map)) => {
                for op in map.keys() {
                    let Some(ts) = (match op.as_str() {
                        "gt" | "gte" | "lt" | "lte" => params.integer(&["created", op])?,
                        _ => {
                            return Err(ApiError::invalid_param(
                                &format!("created[{op}]"),
                                format!("Received unknown parameter: created[{op}]"),
                            )
                            .with_code("parameter_unknown"));
                        }
                    }) else {
                        continue;
                    };
                    match op.as_str() {
                        "gt" => bounds.min = bounds.min.max(ts.saturating_add(1)),
                        "gte" => bounds.min = bounds.min.max(ts),
                        "lt" => bounds.max = bounds.max.min(ts.saturating_sub(1)),
                        _ => bounds.max = bounds.max.min(ts),
                    }
                }
            }
        }
        Ok(bounds)
    }

    /// Whether `created` is within the bounds.
    pub fn contains(&self, created: i64) -> bool {
        (self.min..=self.max).contains(&created)
    }
}

impl ListParams {
    /// Reads `limit`, `starting_after`, `ending_before` and `created`; cursors are ids of
    /// `kind` objects (`label` names the type in "No such ..." messages).
    pub fn parse(
        params: &Params,
        store: &Store,
        kind: &'static str,
        label: &str,
    ) -> ApiResult<ListParams> {
        let limit = parse_limit(params)?;
        let resolve = |id: &str, param: &str| {
            store
                .list_key_of(kind, id)
                .ok_or_else(|| ApiError::resource_missing(label, id, param).with_status(404))
        };
        let cursor = match cursor_ids(params)? {
            Some((id, false)) => Some(Cursor::StartingAfter(resolve(id, "starting_after")?)),
            Some((id, true)) => Some(Cursor::EndingBefore(resolve(id, "ending_before")?)),
            None => None,
        };
        Ok(ListParams {
            limit,
            cursor,
            created: Created::parse(params)?,
            kind,
        })
    }

    /// The `created` bounds of the request.
    pub fn created(&self) -> Created {
        self.created
    }

    /// Narrows the `created` bounds further (e.g. events' 30-day retention).
    pub fn with_created_min(mut self, min: i64) -> Self {
        self.created.min = self.created.min.max(min);
        self
    }

    /// The store's records of the list's type from the cursor on, within the `created`
    /// bounds, in the order [`page`](ListParams::page) takes them; tombstones skipped.
    pub fn walk<'a>(&self, store: &'a Store) -> impl Iterator<Item = &'a Record> + 'a {
        self.walk_all(store).filter(|r| !r.is_deleted())
    }

    /// As [`walk`](ListParams::walk), skipping unparsed the records at rest that cannot
    /// have the top-level string fields given (`None`: no filter on that field). The caller
    /// still checks the fields (a value can also occur in a nested object).
    pub fn walk_where<'a>(
        &self,
        store: &'a Store,
        fields: &[(&str, Option<&str>)],
    ) -> impl Iterator<Item = &'a Record> + 'a {
        let needles = fields
            .iter()
            .filter_map(|(field, value)| value.map(|v| field_needle(field, v)))
            .collect();
        store
            .walk_containing(self.kind, self.store_walk(), needles)
            .filter(|r| !r.is_deleted())
    }

    fn store_walk(&self) -> Walk {
        Walk {
            created_min: self.created.min,
            created_max: self.created.max,
            older_than: match self.cursor {
                Some(Cursor::StartingAfter(key)) => Some(key),
                _ => None,
            },
            newer_than: match self.cursor {
                Some(Cursor::EndingBefore(key)) => Some(key),
                _ => None,
            },
        }
    }

    /// As [`walk`](ListParams::walk), tombstones included.
    pub fn walk_all<'a>(&self, store: &'a Store) -> Box<dyn Iterator<Item = &'a Record> + 'a> {
        store.walk(self.kind, self.store_walk())
    }

    /// One page of `records` as [`walk`](ListParams::walk) yields them (filtered by the
    /// caller), as a Stripe list object: the first `limit`, newest first.
    pub fn page<'a>(&self, url: &str, records: impl IntoIterator<Item = &'a Record>) -> Value {
        let (data, has_more) = self.take(records);
        list_object(
            url,
            data.into_iter().map(|r| r.object.clone()).collect(),
            has_more,
        )
    }

    /// A page of the store's live records of the list's type, for a list with no filter of
    /// its own: records at rest are parsed straight into the answer (none is kept parsed,
    /// and the one after the page is only looked at), the cheapest way to page.
    pub fn page_plain(&self, url: &str, store: &Store) -> Value {
        const DELETED: &str = "\"deleted\":true";
        let mut data: Vec<Value> = Vec::with_capacity(self.limit);
        let mut has_more = false;
        for item in store.walk_stored(self.kind, self.store_walk()) {
            // Whether it is live; a record at rest without `"deleted":true` is, unparsed.
            let parsed: Option<Value> = match item {
                Stored::Parsed(record) if record.is_deleted() => continue,
                Stored::Resting(json) if json.contains(DELETED) => {
                    let object: Value = serde_json::from_str(json).unwrap_or(Value::Null);
                    if object.get("deleted").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    Some(object)
                }
                Stored::Parsed(_) | Stored::Resting(_) => None,
            };
            if data.len() == self.limit {
                has_more = true;
                break;
            }
            data.push(match (parsed, item) {
                (Some(object), _) => object,
                (None, Stored::Parsed(record)) => record.object.clone(),
                (None, Stored::Resting(json)) => serde_json::from_str(json).unwrap_or(Value::Null),
            });
        }
        if matches!(self.cursor, Some(Cursor::EndingBefore(_))) {
            data.reverse();
        }
        list_object(url, data, has_more)
    }

    /// The first `limit` of `records` (from [`walk`](ListParams::walk)), newest first, and
    /// whether more follow.
    pub fn take<'a>(
        &self,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> (Vec<&'a Record>, bool) {
        let mut data: Vec<&Record> = records.into_iter().take(self.limit + 1).collect();
        let has_more = data.len() > self.limit;
        data.truncate(self.limit);
        if matches!(self.cursor, Some(Cursor::EndingBefore(_))) {
            // Walked oldest first from the cursor: the `limit` objects just newer than it.
            data.reverse();
        }
        (data, has_more)
    }
}

/// `limit`: 1..=100, default 10.
fn parse_limit(params: &Params) -> ApiResult<usize> {
    match params.integer(&["limit"])? {
        None => Ok(10),
        Some(n) if n < 1 => Err(ApiError::invalid_request(
            "This value must be greater than or equal to 1.",
        )
        .with_code("parameter_invalid_integer")
        .with_param("limit")),
        Some(n) if n > 100 => Err(ApiError::invalid_request(
            "This value must be less than or equal to 100.",
        )
        .with_code("parameter_invalid_integer")
        .with_param("limit")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(10)),
    }
}

/// The cursor id given, and whether it is `ending_before`; both at once is an error.
fn cursor_ids(params: &Params) -> ApiResult<Option<(&str, bool)>> {
    let after = params
        .string(&["starting_after"])?
        .filter(|s| !s.is_empty());
    let before = params.string(&["ending_before"])?.filter(|s| !s.is_empty());
    match (after, before) {
        (Some(_), Some(_)) => Err(ApiError::invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after.",
        )
        .with_code("parameters_exclusive")
        .with_param("ending_before")),
        (Some(id), None) => Ok(Some((id, false))),
        (None, Some(id)) => Ok(Some((id, true))),
        (None, None) => Ok(None),
    }
}

/// A page of a nested list kept inside its parent (invoice lines, subscription items), in
/// the parent's order: `limit`, and `starting_after` / `ending_before` naming an entry of
/// `items` (`label` names the type in "No such ..." messages).
pub fn page_values(params: &Params, url: &str, items: Vec<Value>, label: &str) -> ApiResult<Value> {
    let limit = parse_limit(params)?;
    let position = |id: &str, param: &str| {
        items
            .iter()
            .position(|item| item.get("id").and_then(Value::as_str) == Some(id))
            .ok_or_else(|| ApiError::resource_missing(label, id, param).with_status(404))
    };
    let (start, end) = match cursor_ids(params)? {
        None => (0, items.len()),
        Some((id, false)) => (position(id, "starting_after")? + 1, items.len()),
        Some((id, true)) => (0, position(id, "ending_before")?),
    };
    let ending_before = matches!(cursor_ids(params)?, Some((_, true)));
    let (from, to, has_more) = if ending_before {
        let from = end.saturating_sub(limit).max(start);
        (from, end, from > start)
    } else {
        let to = start.saturating_add(limit).min(end);
        (start, to, to < end)
    };
    let data = items
        .get(from..to)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    Ok(list_object(url, data, has_more))
}

/// How many entries Stripe embeds of a nested list (invoice `lines`, subscription `items`);
/// the rest are paged from the list's `url`.
pub const EMBEDDED_LIMIT: usize = 10;

/// Cuts the nested lists Stripe cuts (a subscription's `items`, an invoice's `lines`)
/// wherever they are in `value` (an answer, a list page, an event) to their first
/// [`EMBEDDED_LIMIT`] entries, with `has_more: true` when entries were cut.
pub fn cap_nested_lists(value: &mut Value) {
    cap(value, 0);
}

fn cap(value: &mut Value, depth: usize) {
    if depth > 8 {
        return;
    }
    match value {
        Value::Object(map) => {
            let nested = match map.get("object").and_then(Value::as_str) {
                Some("subscription") => Some("items"),
                Some("invoice") => Some("lines"),
                _ => None,
            };
            if let Some(field) = nested
                && let Some(Value::Object(list)) = map.get_mut(field)
                && let Some(Value::Array(data)) = list.get_mut("data")
                && data.len() > EMBEDDED_LIMIT
            {
                data.truncate(EMBEDDED_LIMIT);
                list.insert("has_more".into(), Value::Bool(true));
            }
            for child in map.values_mut() {
                cap(child, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                cap(item, depth + 1);
            }
        }
        _ => {}
    }
}

/// `{"object":"list","data":...,"has_more":...,"url":...}`. The objects are moved in:
/// `json!` would copy each one, node by node, through serde's value serializer.
pub fn list_object(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    let mut list = serde_json::Map::new();
    list.insert("object".into(), Value::from("list"));
    list.insert("data".into(), Value::Array(data));
    list.insert("has_more".into(), Value::Bool(has_more));
    list.insert("url".into(), Value::from(url));
    Value::Object(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kinds::CUSTOMER;
    use serde_json::json;

    fn store_with(n: usize) -> Store {
        let mut store = Store::new(false);
        for i in 0..n {
            store.insert(CUSTOMER, json!({ "id": format!("cus_{i}"), "created": i }));
        }
        // At rest (compact JSON), as after a request; one tombstone at rest, one parsed.
        store.insert(
            CUSTOMER,
            json!({ "id": "cus_gone", "created": 2, "deleted": true }),
        );
        store.compact();
        store.insert(
            CUSTOMER,
            json!({ "id": "cus_gone2", "created": 3, "deleted": true }),
        );
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
        // The plain page (records at rest copied out, not kept parsed) first, while the
        // records are at rest, then the walked one: the same page.
        let plain = lp.page_plain("/v1/customers", store);
        let page = lp.page("/v1/customers", lp.walk(store));
        assert_eq!(plain, page, "{query}");
        Ok(page)
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
        let page = list(&store, "created[gte]=1&created[lt]=3").unwrap();
        assert_eq!(ids(&page), ["cus_2", "cus_1"]);
        let page = list(&store, "created[gt]=1&created[lte]=3&limit=1").unwrap();
        assert_eq!(ids(&page), ["cus_3"]);
        assert_eq!(page["has_more"], true);
        let page = list(&store, "created[gt]=1&created[lte]=3&starting_after=cus_3").unwrap();
        assert_eq!(ids(&page), ["cus_2"]);
        assert_eq!(page["has_more"], false);
        let page = list(&store, "created=4").unwrap();
        assert_eq!(ids(&page), ["cus_4"]);
        // A cursor outside the bounds and bounds that exclude everything are empty pages.
        let page = list(&store, "created[lt]=2&ending_before=cus_0").unwrap();
        assert_eq!(ids(&page), ["cus_1"]);
        assert!(ids(&list(&store, "created[gt]=3&created[lt]=4").unwrap()).is_empty());
        assert!(ids(&list(&store, "created[gt]=9223372036854775807").unwrap()).is_empty());
        assert!(ids(&list(&store, "created[lt]=-9223372036854775808").unwrap()).is_empty());
        assert!(ids(&list(&store, "created[lt]=2&starting_after=cus_4").unwrap()).len() == 2);
        assert!(list(&store, "created[foo]=1").is_err());
    }

    #[test]
    fn nested_lists_page_and_cap() {
        let items: Vec<Value> = (0..25).map(|i| json!({"id": format!("li_{i}")})).collect();
        let page = |query: &str| {
            let params = Params::parse(&[query.as_bytes()]).unwrap();
            page_values(&params, "/v1/x", items.clone(), "line")
        };
        let first = page("").unwrap();
        assert_eq!(ids(&first).len(), 10);
        assert_eq!(first["has_more"], true);
        let last = page("limit=100&starting_after=li_9").unwrap();
        assert_eq!(ids(&last).len(), 15);
        assert_eq!(last["has_more"], false);
        let back = page("limit=3&ending_before=li_9").unwrap();
        assert_eq!(ids(&back), ["li_6", "li_7", "li_8"]);
        assert_eq!(back["has_more"], true);
        let back = page("limit=30&ending_before=li_2").unwrap();
        assert_eq!(ids(&back), ["li_0", "li_1"]);
        assert_eq!(back["has_more"], false);
        assert_eq!(page("starting_after=li_nope").unwrap_err().status, 404);
        assert!(page("limit=0").is_err());

        let mut sub = json!({"object": "subscription", "items": {"object": "list",
            "data": items, "has_more": false, "url": "/v1/subscription_items?subscription=sub_1"}});
        let mut answer = json!({"object": "list", "data": [sub.clone()]});
        cap_nested_lists(&mut sub);
        assert_eq!(sub["items"]["data"].as_array().unwrap().len(), 10);
        assert_eq!(sub["items"]["has_more"], true);
        cap_nested_lists(&mut answer);
        assert_eq!(answer["data"][0]["items"]["has_more"], true);
    }

    #[test]
    fn ties_in_one_second_keep_creation_order() {
        let mut store = Store::new(false);
        for i in 0..250 {
            store.insert(
                CUSTOMER,
                json!({ "id": format!("cus_{i:03}"), "created": 7 }),
            );
        }
        let mut seen = Vec::new();
        let mut query = "limit=100".to_owned();
        loop {
            let page = list(&store, &query).unwrap();
            let page_ids = ids(&page);
            seen.extend(page_ids.clone());
            if page["has_more"] != true {
                break;
            }
            query = format!("limit=100&starting_after={}", page_ids.last().unwrap());
        }
        let expected: Vec<String> = (0..250).rev().map(|i| format!("cus_{i:03}")).collect();
        assert_eq!(seen, expected);
    }
}
