//! Stripe's form encoding: `application/x-www-form-urlencoded` with bracket nesting.
//!
//! Stripe clients send nested parameters as `metadata[plan]=pro`, arrays as `expand[0]=a`
//! (or `expand[]=a`), and arrays of hashes as `items[0][price]=p`. [`Params::parse`] turns
//! such pairs into a tree of [`Param`]s; the typed getters turn that tree into values and
//! answer Stripe-shaped 400s (never panics) for anything malformed.
//!
//! Parameters an endpoint does not take are refused before it runs, as Stripe refuses them
//! (see [`crate::spec::unknown_parameters`]).

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
    /// The parameter tree: each top-level name and its value.
    pub fn tree(&self) -> &BTreeMap<String, Param> {
        &self.root
    }

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
}

mod values;

#[cfg(test)]
mod tests;
