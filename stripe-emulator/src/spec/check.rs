//! Checks a JSON value against the definition: every required field present, `null` only
//! where the field is nullable, no field the definition does not have, the right type, and
//! enum values from the closed lists.

use serde_json::{Map, Value};

use super::{Alt, Prim, Spec, TypeDef};

/// What is wrong with a value, one line per problem (`customer.invoice_settings.footer:
/// missing (required)`); empty when it is valid.
pub type Problems = Vec<String>;

/// Checks `value` (named `path` in the problems) against `alts`.
pub fn check(spec: &Spec, value: &Value, alts: &[Alt], path: &str) -> Problems {
    let mut problems = Vec::new();
    Checker { spec }.alts(value, alts, path, &mut problems);
    problems
}

/// Checks an event: its envelope against `EventBase` and its `data.object` against the type
/// its `type` names.
pub fn check_event(spec: &Spec, value: &Value, path: &str) -> Problems {
    let mut problems = Vec::new();
    Checker { spec }.event(value, path, &mut problems);
    problems
}

struct Checker<'s> {
    spec: &'s Spec,
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn expected(alts: &[Alt]) -> String {
    let names: Vec<String> = alts
        .iter()
        .map(|alt| match alt {
            Alt::Prim(p) => format!("{p:?}").to_lowercase(),
            Alt::Lit { lit } if lit.len() <= 6 => format!("one of {lit:?}"),
            Alt::Lit { .. } => "an enum value".to_owned(),
            Alt::Ref { name } | Alt::Ext { ext: name } => name.clone(),
            Alt::Arr { .. } => "array".to_owned(),
            Alt::Map { .. } => "hash".to_owned(),
            Alt::List { .. } => "list".to_owned(),
            Alt::Search { .. } => "search_result".to_owned(),
            Alt::Obj { .. } => "object".to_owned(),
            Alt::Event { .. } => "event".to_owned(),
        })
        .collect();
    names.join(" | ")
}

impl Checker<'_> {
    fn has(alts: &[Alt], prim: Prim) -> bool {
        alts.iter()
            .any(|a| matches!(a, Alt::Prim(p) if *p == prim || *p == Prim::Any))
    }

    fn alts(&self, value: &Value, alts: &[Alt], path: &str, out: &mut Problems) {
        if Self::has(alts, Prim::Any) {
            return;
        }
        match value {
            Value::Null if Self::has(alts, Prim::Null) => {}
            Value::Null => out.push(format!("{path}: null, but the field is not nullable")),
            Value::Bool(_) if Self::has(alts, Prim::Boolean) => {}
            Value::Number(_) if Self::has(alts, Prim::Number) => {}
            Value::String(_) if Self::has(alts, Prim::String) => {}
            Value::String(s) => {
                let lits: Vec<&String> = alts
                    .iter()
                    .filter_map(|a| match a {
                        Alt::Lit { lit } => Some(lit),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                if lits.contains(&s) {
                    return;
                }
                if lits.is_empty() {
                    out.push(format!("{path}: a string, expected {}", expected(alts)));
                } else {
                    out.push(format!("{path}: {s:?} is not one of {lits:?}"));
                }
            }
            Value::Array(items) => {
                let inner: Vec<Alt> = alts
                    .iter()
                    .filter_map(|a| match a {
                        Alt::Arr { arr } => Some(arr.iter().cloned()),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                if inner.is_empty() {
                    out.push(format!("{path}: an array, expected {}", expected(alts)));
                    return;
                }
                for (i, item) in items.iter().enumerate() {
                    self.alts(item, &inner, &format!("{path}[{i}]"), out);
                }
            }
            Value::Object(map) => self.object(map, value, alts, path, out),
            other => out.push(format!(
                "{path}: {}, expected {}",
                describe(other),
                expected(alts)
            )),
        }
    }

    fn object(
        &self,
        map: &Map<String, Value>,
        value: &Value,
        alts: &[Alt],
        path: &str,
        out: &mut Problems,
    ) {
        let candidates: Vec<&Alt> = alts
            .iter()
            .filter(|a| !matches!(a, Alt::Prim(_) | Alt::Lit { .. } | Alt::Arr { .. }))
            .collect();
        if candidates.is_empty() {
            out.push(format!("{path}: an object, expected {}", expected(alts)));
            return;
        }
        // Several object types (`Account | BankAccount | Card | Source`): the one whose
        // `object` names this value's `object`.
        let object = map.get("object").and_then(Value::as_str);
        let named: Vec<&Alt> = candidates
            .iter()
            .copied()
            .filter(|alt| match (alt, object) {
                (Alt::Ref { name }, Some(object)) => self
                    .spec
                    .type_def(name)
                    .and_then(|def| def.fields.get("object"))
                    .is_some_and(|f| {
                        f.t.iter().any(
                            |a| matches!(a, Alt::Lit { lit } if lit.iter().any(|l| l == object)),
                        )
                    }),
                (Alt::List { .. }, Some(object)) => object == "list",
                (Alt::Search { .. }, Some(object)) => object == "search_result",
                (Alt::Event { .. }, Some(object)) => object == "event",
                _ => false,
            })
            .collect();
        let pool = if named.is_empty() { candidates } else { named };
        // The alternative with the fewest problems is the one meant.
        let mut best: Option<Problems> = None;
        for alt in pool {
            let mut problems = Vec::new();
            self.one(map, value, alt, path, &mut problems);
            if best.as_ref().is_none_or(|b| problems.len() < b.len()) {
                let done = problems.is_empty();
                best = Some(problems);
                if done {
                    break;
                }
            }
        }
        out.extend(best.unwrap_or_default());
    }

    fn one(
        &self,
        map: &Map<String, Value>,
        value: &Value,
        alt: &Alt,
        path: &str,
        out: &mut Problems,
    ) {
        match alt {
            Alt::Ref { name } => match self.spec.type_def(name) {
                Some(def) => self.fields(map, def, path, out),
                None => out.push(format!("{path}: the definition has no type {name}")),
            },
            Alt::Ext { .. } => {}
            Alt::Obj { obj } => self.fields(map, obj, path, out),
            Alt::Map { map: inner } => {
                for (k, v) in map {
                    self.alts(v, inner, &format!("{path}.{k}"), out);
                }
            }
            Alt::List { list } => self.list(map, "list", list, &[], path, out),
            Alt::Search { search } => self.list(
                map,
                "search_result",
                search,
                &["next_page", "total_count"],
                path,
                out,
            ),
            Alt::Event { .. } => self.event(value, path, out),
            Alt::Prim(_) | Alt::Lit { .. } | Alt::Arr { .. } => out.push(format!(
                "{path}: an object, expected {}",
                expected(std::slice::from_ref(alt))
            )),
        }
    }

    /// Stripe's list object (`object`, `data`, `has_more`, `url`), or a search result with
    /// its `next_page` (and `total_count` when asked for).
    fn list(
        &self,
        map: &Map<String, Value>,
        object: &str,
        element: &[Alt],
        extra: &[&str],
        path: &str,
        out: &mut Problems,
    ) {
        if map.get("object").and_then(Value::as_str) != Some(object) {
            out.push(format!("{path}.object: expected {object:?}"));
        }
        match map.get("data") {
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.alts(item, element, &format!("{path}.data[{i}]"), out);
                }
            }
            _ => out.push(format!("{path}.data: missing or not an array")),
        }
        if !map.get("has_more").is_some_and(Value::is_boolean) {
            out.push(format!("{path}.has_more: missing or not a boolean"));
        }
        if !map.get("url").is_some_and(Value::is_string) {
            out.push(format!("{path}.url: missing or not a string"));
        }
        if object == "search_result" {
            match map.get("next_page") {
                Some(Value::Null | Value::String(_)) => {}
                _ => out.push(format!("{path}.next_page: missing or not a string or null")),
            }
        }
        for key in map.keys() {
            if !["object", "data", "has_more", "url"].contains(&key.as_str())
                && !extra.contains(&key.as_str())
            {
                out.push(format!(
                    "{path}.{key}: not in Stripe's definition of a list"
                ));
            }
        }
    }

    fn fields(&self, map: &Map<String, Value>, def: &TypeDef, path: &str, out: &mut Problems) {
        for (name, field) in &def.fields {
            let never = field.t.iter().all(|a| matches!(a, Alt::Prim(Prim::Void)));
            match map.get(name) {
                None if field.req && !never => {
                    out.push(format!("{path}.{name}: missing (required)"));
                }
                None => {}
                Some(_) if never => out.push(format!("{path}.{name}: present, but never sent")),
                Some(v) => self.alts(v, &field.t, &format!("{path}.{name}"), out),
            }
        }
        for (key, v) in map {
            if def.fields.contains_key(key) {
                continue;
            }
            match &def.index {
                Some(index) => self.alts(v, index, &format!("{path}.{key}"), out),
                None => out.push(format!("{path}.{key}: not in Stripe's definition")),
            }
        }
    }

    fn event(&self, value: &Value, path: &str, out: &mut Problems) {
        let Some(map) = value.as_object() else {
            out.push(format!("{path}: {}, expected an event", describe(value)));
            return;
        };
        let Some(base) = self.spec.type_def("EventBase") else {
            out.push(format!("{path}: the definition has no EventBase"));
            return;
        };
        // The envelope, but `data`, which depends on the type.
        let mut envelope = base.clone();
        envelope.fields.remove("data");
        let mut rest = map.clone();
        let data = rest.remove("data");
        self.fields(&rest, &envelope, path, out);
        let kind = map.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some(object_alts) = self.spec.events.get(kind) else {
            out.push(format!(
                "{path}.type: {kind:?} is not an event type the definition describes"
            ));
            return;
        };
        let Some(Value::Object(data)) = data else {
            out.push(format!("{path}.data: missing or not an object"));
            return;
        };
        match data.get("object") {
            Some(object) => self.alts(object, object_alts, &format!("{path}.data.object"), out),
            None => out.push(format!("{path}.data.object: missing (required)")),
        }
        match data.get("previous_attributes") {
            None | Some(Value::Object(_)) => {}
            Some(other) => out.push(format!(
                "{path}.data.previous_attributes: {}, expected an object",
                describe(other)
            )),
        }
        for key in data.keys() {
            if key != "object" && key != "previous_attributes" {
                out.push(format!("{path}.data.{key}: not in Stripe's definition"));
            }
        }
    }
}
