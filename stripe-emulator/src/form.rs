//! Stripe's form encoding: `application/x-www-form-urlencoded` with bracket nesting.
//!
//! Stripe clients send nested parameters as `metadata[plan]=pro`, arrays as `expand[0]=a`
//! (or `expand[]=a`), and arrays of hashes as `items[0][price]=p`. [`Params::parse`] turns
//! such pairs into a tree of [`Param`]s; the typed getters turn that tree into values and
//! answer Stripe-shaped 400s (never panics) for anything malformed.
//!
//! Unknown parameters are kept in the tree and simply never read: the emulator ignores them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// One node of a parsed parameter tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A scalar; every form value is a string on the wire.
    Str(String),
    /// A hash (`a[b]=..`) or an array (`a[0]=..`, `a[]=..`): arrays are hashes whose keys are
    /// all indices, and are read as arrays by [`Param::as_list`].
    Map(BTreeMap<String, Param>),
}

impl Param {
    /// The scalar, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Param::Str(s) => Some(s),
            Param::Map(_) => None,
        }
    }

    /// The elements, if this node reads as an array: a hash with index keys (ordered by
    /// index), an empty string (an empty array, as Stripe reads `expand=`), or a scalar (a
    /// one-element array, leniently).
    pub fn as_list(&self) -> Option<Vec<&Param>> {
        match self {
            Param::Str(s) if s.is_empty() => Some(Vec::new()),
            Param::Str(_) => Some(vec![self]),
            Param::Map(map) => {
                let mut indexed = Vec::with_capacity(map.len());
                for (key, value) in map {
                    indexed.push((key.parse::<usize>().ok()?, value));
                }
                indexed.sort_by_key(|(index, _)| *index);
                Some(indexed.into_iter().map(|(_, value)| value).collect())
            }
        }
    }

    /// JSON for logs and the `/_emulator/requests` record: scalars as strings, index-keyed
    /// hashes as arrays, other hashes as objects.
    pub fn to_json(&self) -> Value {
        match self {
            Param::Str(s) => Value::String(s.clone()),
            Param::Map(map) => {
                let is_list = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
                if is_list {
                    let items = self.as_list().unwrap_or_default();
                    Value::Array(items.into_iter().map(Param::to_json).collect())
                } else {
                    Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
                }
            }
        }
    }
}

/// A hash argument such as `metadata`: either cleared wholesale (`metadata=`) or a set of
/// entries, where an empty value deletes that key on update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashArg {
    /// `name=` (empty string): unset the whole hash.
    Clear,
    /// `name[k]=v` entries.
    Entries(BTreeMap<String, String>),
}

/// The parsed parameters of one request (query string and body together).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    root: BTreeMap<String, Param>,
    /// The decoded pairs, in the order received (for fingerprints and records).
    pairs: Vec<(String, String)>,
}

/// Renders a parameter path as Stripe names it in errors: `invoice_settings[default_payment_method]`.
pub fn param_name(path: &[&str]) -> String {
    let mut name = String::new();
    for (i, seg) in path.iter().enumerate() {
        if i == 0 {
            name.push_str(seg);
        } else {
            name.push('[');
            name.push_str(seg);
            name.push(']');
        }
    }
    name
}

/// Splits `a[b][0][]` into `["a", "b", "0", ""]`. A key whose brackets do not nest cleanly is
/// taken literally, as one segment.
fn split_key(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else {
        return vec![key.to_owned()];
    };
    if open == 0 {
        return vec![key.to_owned()];
    }
    let mut segs = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else {
            return vec![key.to_owned()];
        };
        let Some(close) = inner.find(']') else {
            return vec![key.to_owned()];
        };
        segs.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    segs
}

fn hash_conflict(path: &[String]) -> ApiError {
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    let name = param_name(&refs);
    ApiError::invalid_param(
        &name,
        format!("Invalid hash: {name} cannot be both a value and a hash"),
    )
}

fn insert(
    map: &mut BTreeMap<String, Param>,
    segs: &[String],
    value: String,
    path: &mut Vec<String>,
) -> ApiResult<()> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    // `[]` appends: a new element, or (Rails-style) the last one if it is a hash that does
    // not have the next key yet.
    let key = if first.is_empty() {
        let next_index = map
            .keys()
            .filter_map(|k| k.parse::<usize>().ok())
            .max()
            .map(|m| m + 1);
        let last_index = next_index.map(|n| n - 1);
        match (rest.first(), last_index) {
            (Some(next), Some(last)) => match map.get(&last.to_string()) {
                Some(Param::Map(m)) if !next.is_empty() && !m.contains_key(next) => {
                    last.to_string()
                }
                _ => next_index.unwrap_or(0).to_string(),
            },
            _ => next_index.unwrap_or(0).to_string(),
        }
    } else {
        first.clone()
    };
    path.push(key.clone());
    if rest.is_empty() {
        match map.get(&key) {
            Some(Param::Map(_)) => return Err(hash_conflict(path)),
            // A repeated scalar key: the last value wins.
            _ => {
                map.insert(key, Param::Str(value));
            }
        }
        return Ok(());
    }
    let entry = map
        .entry(key)
        .or_insert_with(|| Param::Map(BTreeMap::new()));
    match entry {
        Param::Map(child) => insert(child, rest, value, path),
        Param::Str(_) => Err(hash_conflict(path)),
    }
}

impl Params {
    /// Parses one or more form-encoded sources (e.g. the query string, then the body).
    pub fn parse(sources: &[&[u8]]) -> ApiResult<Params> {
        let mut params = Params::default();
        for source in sources {
            for (key, value) in form_urlencoded::parse(source) {
                if key.is_empty() {
                    continue;
                }
                let segs = split_key(&key);
                insert(&mut params.root, &segs, value.to_string(), &mut Vec::new())?;
                params.pairs.push((key.into_owned(), value.into_owned()));
            }
        }
        Ok(params)
    }

    /// The decoded `(key, value)` pairs as received.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// True when no parameter was sent.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// A canonical rendering of the parameters, independent of their order on the wire.
    pub fn canonical(&self) -> String {
        let mut pairs = self.pairs.clone();
        pairs.sort();
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// The whole tree as JSON (see [`Param::to_json`]).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.root
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<Map<_, _>>(),
        )
    }

    /// The node at a path such as `["invoice_settings", "default_payment_method"]`.
    pub fn get(&self, path: &[&str]) -> Option<&Param> {
        let (first, rest) = path.split_first()?;
        let mut node = self.root.get(*first)?;
        for seg in rest {
            match node {
                Param::Map(map) => node = map.get(*seg)?,
                Param::Str(_) => return None,
            }
        }
        Some(node)
    }

    /// True when the parameter was sent at all (even empty).
    pub fn has(&self, path: &[&str]) -> bool {
        self.get(path).is_some()
    }

    /// A string parameter; a hash where a string belongs is a 400.
    pub fn string(&self, path: &[&str]) -> ApiResult<Option<&str>> {
        match self.get(path) {
            None => Ok(None),
            Some(Param::Str(s)) => Ok(Some(s)),
            Some(Param::Map(_)) => {
                let name = param_name(path);
                Err(ApiError::invalid_param(
                    &name,
                    format!("Invalid string: {name} must be a string, not a hash"),
                ))
            }
        }
    }

    /// A required, non-empty string parameter (`parameter_missing` otherwise).
    pub fn required_string(&self, path: &[&str]) -> ApiResult<&str> {
        match self.string(path)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::parameter_missing(&param_name(path))),
        }
    }

    /// A nullable string as update endpoints read it: absent → `None` (leave unchanged),
    /// empty → `Some(None)` (unset), otherwise `Some(Some(value))`.
    pub fn nullable_string(&self, path: &[&str]) -> ApiResult<Option<Option<&str>>> {
        Ok(self
            .string(path)?
            .map(|s| if s.is_empty() { None } else { Some(s) }))
    }

    /// An integer parameter (`parameter_invalid_integer` when it does not parse).
    pub fn integer(&self, path: &[&str]) -> ApiResult<Option<i64>> {
        let name = param_name(path);
        match self.string(path)? {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid_integer(&name, s)),
        }
    }

    /// A string parameter that counts only when non-empty (`x=` reads as absent).
    pub fn non_empty(&self, path: &[&str]) -> ApiResult<Option<&str>> {
        Ok(self.string(path)?.filter(|s| !s.is_empty()))
    }

    /// True when a top-level parameter other than `names` was sent.
    pub fn params_other_than(&self, names: &[&str]) -> bool {
        self.root.keys().any(|k| !names.contains(&k.as_str()))
    }

    /// A decimal number parameter such as `percent_off=25.5` (`parameter_invalid_decimal`
    /// when it does not parse).
    pub fn float(&self, path: &[&str]) -> ApiResult<Option<f64>> {
        let name = param_name(path);
        match self.non_empty(path)? {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid_request(format!("Invalid decimal: {s}"))
                        .with_code("parameter_invalid_decimal")
                        .with_param(&name)
                }),
        }
    }

    /// The elements of an array-of-hashes parameter such as `items[0][price]=..`, with
    /// their index as sent (`items[3]` stays 3). Absent → empty; a scalar → 400.
    pub fn indexed(&self, path: &[&str]) -> ApiResult<Vec<String>> {
        let name = param_name(path);
        match self.get(path) {
            None => Ok(Vec::new()),
            Some(Param::Str(s)) if s.is_empty() => Ok(Vec::new()),
            Some(Param::Str(_)) => Err(ApiError::invalid_param(
                &name,
                format!("Invalid array: {name} must be an array"),
            )),
            Some(Param::Map(map)) => {
                let mut keys = Vec::with_capacity(map.len());
                for key in map.keys() {
                    let index = key.parse::<usize>().map_err(|_| {
                        ApiError::invalid_param(
                            &name,
                            format!("Invalid array: {name} must be an array"),
                        )
                    })?;
                    keys.push((index, key.clone()));
                }
                keys.sort();
                Ok(keys.into_iter().map(|(_, key)| key).collect())
            }
        }
    }

    /// A boolean parameter: `true` or `false`.
    pub fn boolean(&self, path: &[&str]) -> ApiResult<Option<bool>> {
        let name = param_name(path);
        match self.string(path)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid_param(
                &name,
                format!("Invalid boolean: {other}"),
            )),
        }
    }

    /// An array of strings (`expand[0]=a&expand[1]=b`); absent → empty.
    pub fn string_list(&self, path: &[&str]) -> ApiResult<Vec<String>> {
        let name = param_name(path);
        let Some(node) = self.get(path) else {
            return Ok(Vec::new());
        };
        let items = node.as_list().ok_or_else(|| {
            ApiError::invalid_param(&name, format!("Invalid array: {name} must be an array"))
        })?;
        items
            .into_iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid_param(
                        &name,
                        format!("Invalid string: {name} must contain strings"),
                    )
                })
            })
            .collect()
    }

    /// A hash of strings such as `metadata`.
    pub fn hash(&self, path: &[&str]) -> ApiResult<Option<HashArg>> {
        let name = param_name(path);
        match self.get(path) {
            None => Ok(None),
            Some(Param::Str(s)) if s.is_empty() => Ok(Some(HashArg::Clear)),
            Some(Param::Str(_)) => Err(ApiError::invalid_param(&name, "Invalid hash")),
            Some(Param::Map(map)) => {
                let mut entries = BTreeMap::new();
                for (key, value) in map {
                    match value {
                        Param::Str(s) => {
                            entries.insert(key.clone(), s.clone());
                        }
                        Param::Map(_) => {
                            return Err(ApiError::invalid_param(
                                &format!("{name}[{key}]"),
                                format!(
                                    "Invalid string: {name}[{key}] must be a string, not a hash"
                                ),
                            ));
                        }
                    }
                }
                Ok(Some(HashArg::Entries(entries)))
            }
        }
    }

    /// The `expand[]` list.
    pub fn expand(&self) -> ApiResult<Vec<String>> {
        self.string_list(&["expand"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Params {
        Params::parse(&[s.as_bytes()]).expect("parses")
    }

    #[test]
    fn nested_hashes_and_arrays() {
        let p = parse(
            "email=a%40b.co&metadata[plan]=pro&metadata%5Bseats%5D=3&expand[0]=x&expand[1]=y&items[0][price]=p1&items[1][price]=p2&items[1][quantity]=2&name=Ann+Lee",
        );
        assert_eq!(p.string(&["email"]).unwrap(), Some("a@b.co"));
        assert_eq!(p.string(&["name"]).unwrap(), Some("Ann Lee"));
        assert_eq!(p.string(&["metadata", "plan"]).unwrap(), Some("pro"));
        assert_eq!(p.string(&["metadata", "seats"]).unwrap(), Some("3"));
        assert_eq!(p.expand().unwrap(), vec!["x", "y"]);
        let items = p.get(&["items"]).unwrap().as_list().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(p.to_json()["items"][1]["quantity"], "2");
        assert_eq!(p.to_json()["metadata"]["plan"], "pro");
    }

    #[test]
    fn indices_order_numerically() {
        let p = parse("expand[10]=k&expand[2]=c&expand[0]=a");
        assert_eq!(p.expand().unwrap(), vec!["a", "c", "k"]);
    }

    #[test]
    fn empty_brackets_append() {
        let p =
            parse("expand[]=a&expand[]=b&items[][price]=p1&items[][quantity]=1&items[][price]=p2");
        assert_eq!(p.expand().unwrap(), vec!["a", "b"]);
        let json = p.to_json();
        assert_eq!(json["items"][0]["price"], "p1");
        assert_eq!(json["items"][0]["quantity"], "1");
        assert_eq!(json["items"][1]["price"], "p2");
    }

    #[test]
    fn hash_args() {
        let p = parse("metadata=&x[a]=1&x[b]=");
        assert_eq!(p.hash(&["metadata"]).unwrap(), Some(HashArg::Clear));
        let Some(HashArg::Entries(e)) = p.hash(&["x"]).unwrap() else {
            panic!("entries")
        };
        assert_eq!(e.get("a").map(String::as_str), Some("1"));
        assert_eq!(e.get("b").map(String::as_str), Some(""));
        assert!(parse("metadata=oops").hash(&["metadata"]).is_err());
    }

    #[test]
    fn conflicts_and_bad_values_are_400s() {
        let err = Params::parse(&[b"a=1&a[b]=2"]).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(err.param.as_deref(), Some("a"));
        let err = Params::parse(&[b"a[b]=1&a=2"]).unwrap_err();
        assert_eq!(err.status, 400);
        let p = parse("limit=ten&flag=maybe&h[x]=1");
        let err = p.integer(&["limit"]).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("parameter_invalid_integer"));
        assert_eq!(err.message, "Invalid integer: ten");
        assert!(p.boolean(&["flag"]).is_err());
        assert!(p.string(&["h"]).is_err());
        let err = p.required_string(&["customer"]).unwrap_err();
        assert_eq!(err.code.as_deref(), Some("parameter_missing"));
        assert_eq!(err.param.as_deref(), Some("customer"));
    }

    #[test]
    fn malformed_keys_are_literal() {
        let p = parse("a[b=1&[x]=2&c]=3");
        assert_eq!(p.string(&["a[b"]).unwrap(), Some("1"));
        assert_eq!(p.string(&["[x]"]).unwrap(), Some("2"));
        assert_eq!(p.string(&["c]"]).unwrap(), Some("3"));
    }

    #[test]
    fn canonical_ignores_order() {
        assert_eq!(parse("a=1&b=2").canonical(), parse("b=2&a=1").canonical());
        assert_ne!(parse("a=1&b=2").canonical(), parse("a=1&b=3").canonical());
    }

    #[test]
    fn param_names() {
        assert_eq!(
            param_name(&["invoice_settings", "default_payment_method"]),
            "invoice_settings[default_payment_method]"
        );
        assert_eq!(param_name(&["email"]), "email");
    }
}
