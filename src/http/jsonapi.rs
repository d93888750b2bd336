//! JSON:API envelopes (API_CONTRACT.md, Envelope) and request-body parsing that accepts both
//! the spec's and the SDK's shapes.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::paging::Paging;
use crate::error::ApiError;

/// A resource object: `{"id","type","attributes"}`. Written straight out by serde (no
/// `serde_json::Value` tree in between: a list of 20 was a fifth of the list's CPU).
#[derive(Serialize)]
struct Resource<'a, A> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    attributes: &'a A,
}

/// `{"data": ...}`, with `meta` when there is one.
#[derive(Serialize)]
struct Document<D, M> {
    data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<M>,
}

/// One resource: `{"data":{"id","type","attributes"}}`; `attributes` is always present.
pub fn resource<A: Serialize>(
    status: StatusCode,
    kind: &str,
    id: &str,
    attributes: &A,
) -> HttpResponse {
    HttpResponse::build(status).json(Document::<_, ()> {
        data: Resource {
            id,
            kind,
            attributes,
        },
        meta: None,
    })
}

/// 23blocks paging, with both spellings of the totals in `meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PageMeta {
    pub current_page: i64,
    pub per_page: i64,
    pub total_count: i64,
    pub total_pages: i64,
    #[serde(rename = "totalPages")]
    pub total_pages_camel: i64,
    #[serde(rename = "totalRecords")]
    pub total_records: i64,
}

impl PageMeta {
    pub fn new(page: i64, per_page: i64, total: i64) -> Self {
        let pages = if total == 0 {
            0
        } else {
            (total + per_page - 1) / per_page
        };
        Self {
            current_page: page,
            per_page,
            total_count: total,
            total_pages: pages,
            total_pages_camel: pages,
            total_records: total,
        }
    }
}

/// `meta` of a list: the totals both clients read, and Stripe's `has_more` (with cursors:
/// `limit` too, and the totals without page numbers).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum ListMeta {
    Pages {
        #[serde(flatten)]
        page: PageMeta,
        has_more: bool,
    },
    Cursor {
        has_more: bool,
        limit: i64,
        per_page: i64,
        total_count: i64,
        #[serde(rename = "totalRecords")]
        total_records: i64,
    },
}

impl ListMeta {
    pub fn new(paging: &Paging, total: i64, has_more: bool) -> Self {
        match paging {
            Paging::Pages(pages) => ListMeta::Pages {
                page: PageMeta::new(pages.page, pages.per_page, total),
                has_more,
            },
            Paging::Cursor { limit, .. } => ListMeta::Cursor {
                has_more,
                limit: *limit,
                per_page: *limit,
                total_count: total,
                total_records: total,
            },
        }
    }
}

/// A list: `{"data":[...], "meta":{...}}`.
pub fn list<A: Serialize>(
    kind: &str,
    items: &[(String, A)],
    meta: &impl Serialize,
) -> HttpResponse {
    let data: Vec<Resource<'_, A>> = items
        .iter()
        .map(|(id, attributes)| Resource {
            id,
            kind,
            attributes,
        })
        .collect();
    HttpResponse::Ok().json(Document {
        data,
        meta: Some(meta),
    })
}

/// RFC 3339 in UTC with a `Z` (`crate::domain::time`).
pub use crate::domain::time::{timestamp, unix_timestamp};

/// Reads a request body wrapped in `key` (`{"customer":{...}}`, the spec and the SDK), in a
/// JSON:API document (`{"data":{"attributes":{...}}}`), or bare. Returns the parsed value and
/// the JSON pointer prefix its fields live under, for error sources.
pub fn parse_body<T: DeserializeOwned>(body: Value, key: &str) -> Result<(T, String), ApiError> {
    let Value::Object(mut top) = body else {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("The body must be a JSON object like {{\"{key}\": {{...}}}}."),
        ));
    };
    let (inner, prefix) = if let Some(inner) = top.remove(key) {
        (inner, format!("/{key}"))
    } else if let Some(Value::Object(mut data)) = top.remove("data") {
        match data.remove("attributes") {
            Some(attributes) => (attributes, "/data/attributes".to_owned()),
            None => (Value::Object(data), "/data".to_owned()),
        }
    } else {
        (Value::Object(top), String::new())
    };
    if !inner.is_object() {
        return Err(ApiError::validation(
            if prefix.is_empty() { "/" } else { &prefix },
            format!("`{key}` must be a JSON object"),
        ));
    }
    // Ids bounded, no NUL anywhere (crate::http::ids).
    crate::domain::ids::check_body(&inner, &prefix)?;
    let parsed = serde_path_to_error::deserialize(inner).map_err(|err| {
        use serde_path_to_error::Segment;
        let mut pointer = prefix.clone();
        for segment in err.path().iter() {
            let part = match segment {
                Segment::Seq { index } => index.to_string(),
                Segment::Map { key } => key.replace('~', "~0").replace('/', "~1"),
                Segment::Enum { variant } => variant.clone(),
                Segment::Unknown => continue,
            };
            pointer.push('/');
            pointer.push_str(&part);
        }
        let path = err.path().to_string();
        let field = if path == "." { key.to_owned() } else { path };
        ApiError::validation(
            pointer,
            format!("`{field}` has the wrong type: {}", err.inner()),
        )
    })?;
    Ok((parsed, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize)]
    struct Body {
        amount: Option<i64>,
    }

    #[test]
    fn all_three_body_shapes_parse_and_wrong_types_point_at_the_field() {
        for body in [
            json!({"payment": {"amount": 5}}),
            json!({"data": {"attributes": {"amount": 5}}}),
            json!({"amount": 5}),
        ] {
            let (parsed, _) = parse_body::<Body>(body, "payment").unwrap();
            assert_eq!(parsed.amount, Some(5));
        }
        let err = parse_body::<Body>(json!({"payment": {"amount": "x"}}), "payment").unwrap_err();
        assert!(err.detail.contains("`amount`"), "{}", err.detail);
        assert_eq!(err.status.as_u16(), 422);
        assert!(
            matches!(err.error_source, Some(crate::error::ErrorSource::Pointer(ref p)) if p == "/payment/amount")
        );
    }

    #[test]
    fn page_meta_counts_pages() {
        let meta = PageMeta::new(2, 20, 45);
        assert_eq!((meta.total_pages, meta.total_records), (3, 45));
        assert_eq!(PageMeta::new(1, 20, 0).total_pages, 0);
    }
}
