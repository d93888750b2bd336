//! Stripe's search query language (`GET /v1/<resource>/search?query=...`) and its
//! `search_result` pages.
//!
//! A query is up to ten clauses joined by `AND` or by `OR` (not both, and no parentheses,
//! as at Stripe). A clause is `field:value` (exact match), `field~value` (substring, at
//! least three characters, on the fields that allow it), or a numeric comparison
//! `field>value` (`<`, `=`, `>=`, `<=`) on numeric fields, optionally negated with a
//! leading `-`. Strings are quoted (`"..."` or `'...'`, `\` escapes); numbers may be bare;
//! `null` matches a missing value. Metadata is `metadata["key"]:"value"`. String matches
//! ignore case.
//!
//! Simplified from Stripe: results are found at once (Stripe's index lags up to a minute
//! behind writes), and the page token is an offset into the newest-first results.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::form::Params;

/// Most clauses in one query.
const MAX_CLAUSES: usize = 10;

/// Shortest substring a `~` clause may look for.
const MIN_SUBSTRING: usize = 3;

/// How a search field is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A string: exact match.
    Token,
    /// A string: exact match or `~` substring.
    Text,
    /// An integer: exact match and comparisons.
    Number,
    /// `metadata["key"]`: exact match.
    Metadata,
}

/// A searchable field: its name in queries, how it matches, and where the object keeps it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The name in queries, e.g. `email`.
    pub name: &'static str,
    /// How it matches.
    pub kind: FieldKind,
    /// The top-level field of the object (`metadata` for [`FieldKind::Metadata`]).
    pub path: &'static str,
}

/// A comparison of one clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exact,
    Substring,
    Gt,
    Lt,
    Ge,
    Le,
    Eq,
}

/// A clause's value.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Str(String),
    Num(i64),
    Null,
}

/// One clause.
#[derive(Debug, Clone)]
struct Clause {
    negated: bool,
    field: Field,
    /// The metadata key, for metadata clauses.
    key: Option<String>,
    op: Op,
    value: Operand,
}

/// A parsed query: its clauses, and whether they are joined by `OR`.
#[derive(Debug, Clone)]
pub struct Query {
    clauses: Vec<Clause>,
    any: bool,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid_param("query", message)
}

/// Reads the query string character by character.
struct Lexer<'q> {
    chars: Vec<char>,
    pos: usize,
    query: &'q str,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn error(&self, what: &str) -> ApiError {
        invalid(format!(
            "Invalid query: {what} at position {} of `{}`. See https://stripe.com/docs/search#search-query-language for the query syntax.",
            self.pos, self.query
        ))
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn quoted(&mut self) -> ApiResult<String> {
        let Some(quote) = self.peek().filter(|c| *c == '"' || *c == '\'') else {
            return Err(self.error("expected a quoted string"));
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c) => out.push(c),
                        None => return Err(self.error("unterminated string")),
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
            self.pos += 1;
        }
    }

    fn op(&mut self) -> ApiResult<Op> {
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('>'), Some('=')) => Op::Ge,
            (Some('<'), Some('=')) => Op::Le,
            (Some('>'), _) => Op::Gt,
            (Some('<'), _) => Op::Lt,
            (Some('='), _) => Op::Eq,
            (Some(':'), _) => Op::Exact,
            (Some('~'), _) => Op::Substring,
            _ => return Err(self.error("expected one of `:`, `~`, `>`, `<`, `=`, `>=`, `<=`")),
        };
        self.pos += if matches!(op, Op::Ge | Op::Le) { 2 } else { 1 };
        Ok(op)
    }

    fn operand(&mut self) -> ApiResult<Operand> {
        match self.peek() {
            Some('"' | '\'') => Ok(Operand::Str(self.quoted()?)),
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                text.parse()
                    .map(Operand::Num)
                    .map_err(|_| self.error("expected a number"))
            }
            _ => match self.word().as_str() {
                "null" => Ok(Operand::Null),
                "" => Err(self.error("expected a value")),
                _ => Err(self.error("string values must be quoted")),
            },
        }
    }
}

impl Query {
    /// Parses `query` for a resource whose searchable fields are `fields` (`resource`
    /// names it in messages, e.g. `customers`).
    pub fn parse(query: &str, fields: &[Field], resource: &str) -> ApiResult<Query> {
        let mut lexer = Lexer {
            chars: query.chars().collect(),
            pos: 0,
            query,
        };
        let mut clauses = Vec::new();
        let mut joiner: Option<&'static str> = None;
        lexer.skip_spaces();
        loop {
            clauses.push(Self::clause(&mut lexer, fields, resource)?);
            let spaced = lexer.skip_spaces();
            if lexer.peek().is_none() {
                break;
            }
            let word = lexer.word();
            let join = match word.as_str() {
                "AND" if spaced => "AND",
                "OR" if spaced => "OR",
                _ => return Err(lexer.error("expected `AND` or `OR` between clauses")),
            };
            if joiner.is_some_and(|j| j != join) {
                return Err(invalid(
                    "Invalid query: `AND` and `OR` cannot be combined in one query. See https://stripe.com/docs/search#search-query-language for the query syntax.",
                ));
            }
            joiner = Some(join);
            if !lexer.skip_spaces() {
                return Err(lexer.error("expected a space"));
            }
        }
        if clauses.len() > MAX_CLAUSES {
            return Err(invalid(format!(
                "Invalid query: a query may have at most {MAX_CLAUSES} clauses."
            )));
        }
        Ok(Query {
            clauses,
            any: joiner == Some("OR"),
        })
    }

    fn clause(lexer: &mut Lexer<'_>, fields: &[Field], resource: &str) -> ApiResult<Clause> {
        let negated = lexer.peek() == Some('-');
        if negated {
            lexer.pos += 1;
        }
        let name = lexer.word();
        if name.is_empty() {
            return Err(lexer.error("expected a field name"));
        }
        let Some(field) = fields.iter().copied().find(|f| f.name == name) else {
            return Err(invalid(format!(
                "Field '{name}' is an unsupported search field for resource {resource}. See https://stripe.com/docs/search#query-fields-for-{resource} for a list of supported fields."
            )));
        };
        let key = if field.kind == FieldKind::Metadata {
            if lexer.peek() != Some('[') {
                return Err(lexer.error("expected `[` after `metadata`"));
            }
            lexer.pos += 1;
            let key = lexer.quoted()?;
            if lexer.peek() != Some(']') {
                return Err(lexer.error("expected `]`"));
            }
            lexer.pos += 1;
            Some(key)
        } else {
            None
        };
        let op = lexer.op()?;
        let value = lexer.operand()?;
        let numeric = matches!(op, Op::Gt | Op::Lt | Op::Ge | Op::Le | Op::Eq);
        match (field.kind, op, &value) {
            (FieldKind::Number, Op::Substring, _)
            | (FieldKind::Token | FieldKind::Metadata, Op::Substring, _) => {
                return Err(invalid(format!(
                    "Invalid query: substring matching (`~`) is not supported for field '{name}'."
                )));
            }
            (FieldKind::Text, Op::Substring, Operand::Str(s))
                if s.chars().count() < MIN_SUBSTRING =>
            {
                return Err(invalid(format!(
                    "Invalid query: a substring (`~`) must be at least {MIN_SUBSTRING} characters long."
                )));
            }
            (FieldKind::Text, Op::Substring, Operand::Str(_)) => {}
            (FieldKind::Text, Op::Substring, _) => {
                return Err(lexer.error("expected a quoted string"));
            }
            (kind, _, _) if numeric && kind != FieldKind::Number => {
                return Err(invalid(format!(
                    "Invalid query: numeric comparisons are not supported for field '{name}'."
                )));
            }
            (FieldKind::Number, _, Operand::Str(s)) if s.parse::<i64>().is_err() => {
                return Err(invalid(format!(
                    "Invalid query: field '{name}' takes a number."
                )));
            }
            (FieldKind::Number, _, Operand::Null) if numeric => {
                return Err(invalid(format!(
                    "Invalid query: field '{name}' takes a number."
                )));
            }
            (FieldKind::Token | FieldKind::Text | FieldKind::Metadata, _, Operand::Num(_)) => {
                return Err(lexer.error("string values must be quoted"));
            }
            _ => {}
        }
        let value = match (field.kind, value) {
            (FieldKind::Number, Operand::Str(s)) => Operand::Num(s.parse().unwrap_or_default()),
            (_, value) => value,
        };
        Ok(Clause {
            negated,
            field,
            key,
            op,
            value,
        })
    }

    /// Whether `object` matches the query.
    pub fn matches(&self, object: &Value) -> bool {
        let mut results = self.clauses.iter().map(|c| c.matches(object));
        if self.any {
            results.any(|m| m)
        } else {
            results.all(|m| m)
        }
    }
}

impl Clause {
    fn matches(&self, object: &Value) -> bool {
        let actual = match &self.key {
            Some(key) => object.get(self.field.path).and_then(|m| m.get(key)),
            None => object.get(self.field.path),
        }
        .filter(|v| !v.is_null());
        let result = match (&self.value, actual) {
            (Operand::Null, actual) => actual.is_none(),
            (_, None) => false,
            (Operand::Num(n), Some(actual)) => {
                let Some(actual) = actual.as_i64() else {
                    return self.negated;
                };
                match self.op {
                    Op::Gt => actual > *n,
                    Op::Lt => actual < *n,
                    Op::Ge => actual >= *n,
                    Op::Le => actual <= *n,
                    _ => actual == *n,
                }
            }
            (Operand::Str(s), Some(actual)) => {
                let actual = match actual {
                    Value::String(a) => a.to_lowercase(),
                    other => other.to_string(),
                };
                let wanted = s.to_lowercase();
                match self.op {
                    Op::Substring => actual.contains(&wanted),
                    _ => actual == wanted,
                }
            }
        };
        result != self.negated
    }
}

/// Search paging: `limit` (1..=100, default 10) and the `page` token of a previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchPaging {
    limit: usize,
    offset: usize,
}

impl SearchPaging {
    /// Reads `limit` and `page`.
    pub fn parse(p: &Params) -> ApiResult<SearchPaging> {
        let limit = match p.integer(&["limit"])? {
            None => 10,
            Some(n @ 1..=100) => usize::try_from(n).unwrap_or(10),
            Some(n) if n < 1 => {
                return Err(ApiError::invalid_request(
                    "This value must be greater than or equal to 1.",
                )
                .with_code("parameter_invalid_integer")
                .with_param("limit"));
            }
            Some(_) => {
                return Err(ApiError::invalid_request(
                    "This value must be less than or equal to 100.",
                )
                .with_code("parameter_invalid_integer")
                .with_param("limit"));
            }
        };
        let offset = match p.non_empty(&["page"])? {
            None => 0,
            Some(token) => decode_page(token)
                .ok_or_else(|| ApiError::invalid_param("page", "Invalid page token."))?,
        };
        Ok(SearchPaging { limit, offset })
    }

    /// One page of `matches` (newest first) as a `search_result`, with `total_count` when
    /// `expand[]=total_count` asked for it.
    pub fn page(&self, url: &str, matches: Vec<Value>, total_count: bool) -> Value {
        let total = matches.len();
        let data: Vec<Value> = matches
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .collect();
        let end = self.offset.saturating_add(data.len());
        let has_more = end < total;
        let mut result = json!({
            "object": "search_result",
            "data": data,
            "has_more": has_more,
            "next_page": if has_more { json!(encode_page(end)) } else { Value::Null },
            "url": url,
        });
        if total_count && let Some(map) = result.as_object_mut() {
            map.insert("total_count".into(), json!(total));
        }
        result
    }
}

fn encode_page(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("emulator-search:{offset}"))
}

fn decode_page(token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("emulator-search:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field {
            name: "email",
            kind: FieldKind::Text,
            path: "email",
        },
        Field {
            name: "status",
            kind: FieldKind::Token,
            path: "status",
        },
        Field {
            name: "amount",
            kind: FieldKind::Number,
            path: "amount",
        },
        Field {
            name: "metadata",
            kind: FieldKind::Metadata,
            path: "metadata",
        },
    ];

    fn q(query: &str) -> ApiResult<Query> {
        Query::parse(query, FIELDS, "things")
    }

    #[test]
    fn clauses_match_like_stripe() {
        let o = json!({"email": "Ann@Example.com", "status": "succeeded", "amount": 1500, "metadata": {"order": "42"}});
        for (query, expected) in [
            ("email:\"ann@example.com\"", true),
            ("email~\"example\"", true),
            ("email~'nope'", false),
            ("status:'succeeded' AND amount>1000", true),
            ("status:\"succeeded\" AND amount<1000", false),
            ("status:\"failed\" OR amount>=1500", true),
            ("amount=1500", true),
            ("amount<=1499", false),
            ("amount:\"1500\"", true),
            ("-status:\"failed\"", true),
            ("metadata[\"order\"]:\"42\"", true),
            ("metadata['order']:'43'", false),
            ("metadata['other']:null", true),
            ("-metadata['order']:null", true),
            ("email:\"a \\\"quoted\\\" one\"", false),
        ] {
            assert_eq!(q(query).unwrap().matches(&o), expected, "{query}");
        }
    }

    #[test]
    fn malformed_queries_are_400s_on_query() {
        for query in [
            "",
            "email",
            "email:",
            "email:ann",
            "email:\"ann",
            "nope:\"x\"",
            "status~\"succ\"",
            "email~\"an\"",
            "status>\"a\"",
            "amount>\"x\"",
            "amount:1 AND status:\"a\" OR email:\"b\"",
            "amount:1 and status:\"a\"",
            "amount:1 AND",
            "metadata:\"x\"",
        ] {
            let err = q(query).unwrap_err();
            assert_eq!(err.status, 400, "{query}");
            assert_eq!(err.param.as_deref(), Some("query"), "{query}");
        }
        let many = ["amount:1"; 11].join(" OR ");
        assert!(q(&many).is_err());
    }

    #[test]
    fn pages_carry_a_token() {
        let p = Params::parse(&[b"limit=2"]).unwrap();
        let paging = SearchPaging::parse(&p).unwrap();
        let items: Vec<Value> = (0..5).map(|i| json!({"id": i})).collect();
        let first = paging.page("/v1/x/search", items.clone(), true);
        assert_eq!(first["has_more"], true);
        assert_eq!(first["total_count"], 5);
        let token = first["next_page"].as_str().unwrap().to_owned();
        let query = format!("limit=2&page={token}");
        let p = Params::parse(&[query.as_bytes()]).unwrap();
        let second = SearchPaging::parse(&p)
            .unwrap()
            .page("/v1/x/search", items, false);
        assert_eq!(second["data"], json!([{"id": 2}, {"id": 3}]));
        assert!(second.get("total_count").is_none());
        let bad = Params::parse(&[b"page=zzz"]).unwrap();
        assert_eq!(
            SearchPaging::parse(&bad).unwrap_err().param.as_deref(),
            Some("page")
        );
    }
}
