//! Stripe's own definition of the API version the emulator speaks, embedded at compile time
//! (`spec/stripe-2026-09-30.json`, extracted from the `stripe` npm package's types, which
//! Stripe generates from its OpenAPI spec; `spec/generate/extract.mjs` makes it).
//!
//! It answers three questions: which parameters an endpoint takes ([`unknown_parameters`]:
//! anything else is refused as Stripe refuses it), which API versions exist
//! ([`known_version`]), and what an answer or an event must look like ([`check`], used by the
//! conformance suite).

mod check;

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use crate::form::{Param, Params, param_name};

pub use check::{Problems, check, check_event};

static RAW: &str = include_str!("../spec/stripe-2026-09-30.json");
static PARSED: OnceLock<Option<Spec>> = OnceLock::new();

/// The definition, or `None` if the embedded file cannot be read (a build defect the
/// emulator's own tests catch; the emulator then checks nothing rather than failing).
pub fn spec() -> Option<&'static Spec> {
    PARSED
        .get_or_init(|| match serde_json::from_str(RAW) {
            Ok(spec) => Some(spec),
            Err(error) => {
                tracing::error!(%error, "the embedded Stripe definition does not parse");
                None
            }
        })
        .as_ref()
}

/// The whole definition.
#[derive(Debug, Deserialize)]
pub struct Spec {
    /// The API version it describes, e.g. `2026-09-30.endive`.
    pub api_version: String,
    /// Where it was taken from.
    pub source: String,
    /// The endpoints under the paths the emulator serves.
    pub endpoints: Vec<Endpoint>,
    /// Event type -> the type of its `data.object`.
    pub events: HashMap<String, Vec<Alt>>,
    /// Named object and parameter types.
    pub types: HashMap<String, TypeDef>,
}

/// One endpoint: `GET /v1/customers/{}` takes `CustomerRetrieveParams` and answers a
/// `Customer` or a `DeletedCustomer`.
#[derive(Debug, Deserialize)]
pub struct Endpoint {
    /// `GET`, `POST` or `DELETE`.
    pub method: String,
    /// The path, `{}` standing for an id.
    pub path: String,
    /// The name of its parameter type.
    pub params: Option<String>,
    /// What it answers.
    pub returns: Returns,
}

/// What an endpoint answers: an object (one of the alternatives), or a list or search
/// result of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Returns {
    /// One of these.
    One(Vec<Alt>),
    /// A list or search result.
    Wrapped(Alt),
}

impl Returns {
    /// The alternatives an answer is checked against.
    pub fn alternatives(&self) -> Vec<Alt> {
        match self {
            Returns::One(alts) => alts.clone(),
            Returns::Wrapped(alt) => vec![alt.clone()],
        }
    }
}

/// An object type: its fields, and the type of any other key (`Metadata`).
#[derive(Debug, Clone, Deserialize)]
pub struct TypeDef {
    /// Field name -> whether it is required and what it may hold.
    pub fields: BTreeMap<String, Field>,
    /// The type of the values of keys not in `fields`, for hashes.
    #[serde(default)]
    pub index: Option<Vec<Alt>>,
}

/// A field: required (`req`: Stripe always sends it, `null` where allowed) or optional
/// (sent only when set, expanded or included), and its alternatives.
#[derive(Debug, Clone, Deserialize)]
pub struct Field {
    /// Whether the field is always present.
    pub req: bool,
    /// What it may hold.
    pub t: Vec<Alt>,
}

/// One alternative of a value's type.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Alt {
    /// `string`, `number`, `boolean`, `null`, `void` (never present) or `any`.
    Prim(Prim),
    /// One of these strings (a closed enum).
    Lit {
        /// The values.
        lit: Vec<String>,
    },
    /// A named type.
    Ref {
        /// Its name.
        #[serde(rename = "ref")]
        name: String,
    },
    /// An expanded object of a type the definition does not describe here (not checked).
    Ext {
        /// Its name.
        ext: String,
    },
    /// An array of these.
    Arr {
        /// The element's alternatives.
        arr: Vec<Alt>,
    },
    /// A hash of these.
    Map {
        /// The value's alternatives.
        map: Vec<Alt>,
    },
    /// Stripe's list object of these.
    List {
        /// The element's alternatives.
        list: Vec<Alt>,
    },
    /// Stripe's search result of these.
    Search {
        /// The element's alternatives.
        search: Vec<Alt>,
    },
    /// An inline object type.
    Obj {
        /// Its definition.
        obj: TypeDef,
    },
    /// An event: its envelope, and the object its type names.
    Event {
        /// Always true.
        event: bool,
    },
}

/// A scalar alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prim {
    /// A string.
    String,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// Never present.
    Void,
    /// Anything.
    Any,
}

impl Spec {
    /// The endpoint serving `method` on `path` (e.g. `/v1/customers/cus_1`): a literal
    /// segment beats an id (`/v1/customers/search` is the search).
    pub fn endpoint(&self, method: &str, path: &str) -> Option<&Endpoint> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.endpoints
            .iter()
            .filter(|e| e.method == method)
            .filter_map(|e| {
                let pattern: Vec<&str> = e.path.split('/').filter(|s| !s.is_empty()).collect();
                if pattern.len() != segs.len() {
                    return None;
                }
                let mut literal = 0;
                for (p, s) in pattern.iter().zip(&segs) {
                    if *p == "{}" {
                        continue;
                    }
                    if p != s {
                        return None;
                    }
                    literal += 1;
                }
                Some((literal, e))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, e)| e)
    }

    /// The named type `name`.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The API versions Stripe knows (the values a webhook endpoint's `api_version` may
    /// take).
    pub fn versions(&self) -> &[String] {
        let field = self
            .type_def("WebhookEndpointCreateParams")
            .and_then(|t| t.fields.get("api_version"));
        field
            .and_then(|f| {
                f.t.iter().find_map(|alt| match alt {
                    Alt::Lit { lit } => Some(lit.as_slice()),
                    _ => None,
                })
            })
            .unwrap_or(&[])
    }
}

/// Whether `version` is an API version Stripe knows.
pub fn known_version(version: &str) -> bool {
    spec().is_some_and(|spec| spec.versions().iter().any(|v| v == version))
}

/// The parameters of a request to `method` `path` that the endpoint does not take, in
/// Stripe's naming (`items[0][pricee]`), in order; empty for an endpoint the definition
/// does not describe.
pub fn unknown_parameters(method: &str, path: &str, params: &Params) -> Vec<String> {
    let Some(spec) = spec() else {
        return Vec::new();
    };
    let Some(endpoint) = spec.endpoint(method, path) else {
        return Vec::new();
    };
    let alts = match &endpoint.params {
        Some(name) => vec![Alt::Ref { name: name.clone() }],
        // An endpoint that takes no parameters at all.
        None => vec![Alt::Obj {
            obj: TypeDef {
                fields: BTreeMap::new(),
                index: None,
            },
        }],
    };
    let mut unknown = Vec::new();
    let mut path = Vec::new();
    for (key, value) in params.tree() {
        path.push(key.clone());
        walk(spec, &alts, key, value, &mut path, &mut unknown);
        path.pop();
    }
    unknown
}

/// Checks `key` = `value` inside a value of one of `parent`'s alternatives.
fn walk(
    spec: &Spec,
    parent: &[Alt],
    key: &str,
    value: &Param,
    path: &mut Vec<String>,
    unknown: &mut Vec<String>,
) {
    let mut found = false;
    let mut child: Vec<Alt> = Vec::new();
    for alt in parent {
        match alt {
            Alt::Prim(Prim::Any) => return,
            Alt::Map { map } => {
                found = true;
                child.extend(map.iter().cloned());
            }
            Alt::Arr { arr } if key.parse::<usize>().is_ok() => {
                found = true;
                child.extend(arr.iter().cloned());
            }
            Alt::Obj { obj } => found |= member(obj, key, &mut child),
            Alt::Ref { name } => {
                if let Some(def) = spec.type_def(name) {
                    found |= member(def, key, &mut child);
                }
            }
            _ => {}
        }
    }
    if !found {
        let segs: Vec<&str> = path.iter().map(String::as_str).collect();
        unknown.push(param_name(&segs));
        return;
    }
    if let Param::Map(children) = value {
        for (k, v) in children {
            path.push(k.clone());
            walk(spec, &child, k, v, path, unknown);
            path.pop();
        }
    }
}

/// Whether `def` has `key` (a field, or any key of a hash); adds its alternatives to `out`.
fn member(def: &TypeDef, key: &str, out: &mut Vec<Alt>) -> bool {
    if let Some(field) = def.fields.get(key) {
        out.extend(field.t.iter().cloned());
        true
    } else if let Some(index) = &def.index {
        out.extend(index.iter().cloned());
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests;
