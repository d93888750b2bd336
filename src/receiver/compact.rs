//! How a delivery's body is stored: as Stripe sent it, less the whitespace between JSON
//! tokens. Stripe pretty-prints its deliveries, and a third of a typical body is indentation:
//! bytes PostgreSQL would otherwise receive, compress and write to its WAL for every event
//! (docs/BENCHMARKS.md, issue 15). Every other byte is kept, in order (keys, numbers, string
//! escapes), so the stored event is the delivered one and old rows, stored as sent, read the
//! same way.

/// `body` (a JSON document, already parsed once by `parse_event`) without insignificant
/// whitespace. Whitespace inside strings is kept; so is everything in a body that is not
/// valid JSON (nothing is stored then anyway).
pub(super) fn compact_json(body: &[u8]) -> String {
    let mut out = Vec::with_capacity(body.len());
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else {
            match byte {
                b' ' | b'\n' | b'\r' | b'\t' => {}
                b'"' => {
                    in_string = true;
                    out.push(byte);
                }
                _ => out.push(byte),
            }
        }
    }
    // Only ASCII bytes were dropped, so valid UTF-8 stays valid (a body that is not UTF-8
    // was refused by `parse_event`).
    String::from_utf8(out)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn whitespace_between_tokens_goes_and_everything_else_stays() {
        let pretty = "{\n  \"id\": \"evt_1\",\n  \"data\": {\n    \"object\": {\n      \
                      \"description\": \"two  spaces,\\ttab \\\" quote\\\\\",\n      \
                      \"amount\": 1.50e2,\n      \"items\": [ 1 , 2 ],\r\n      \
                      \"name\": \"Zoë 😀\"\n    }\n  }\n}\n";
        let compact = compact_json(pretty.as_bytes());
        assert_eq!(
            compact,
            "{\"id\":\"evt_1\",\"data\":{\"object\":{\"description\":\"two  spaces,\\ttab \
             \\\" quote\\\\\",\"amount\":1.50e2,\"items\":[1,2],\"name\":\"Zoë 😀\"}}}"
        );
        let parsed = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(parsed(&compact), parsed(pretty));
    }

    #[test]
    fn a_compact_body_is_stored_unchanged() {
        let body = r#"{"id":"evt_1","type":"customer.created","data":{"object":{"name":"A B"}}}"#;
        assert_eq!(compact_json(body.as_bytes()), body);
    }
}
