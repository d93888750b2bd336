//! Reading an HTTP answer of bounded size: a misbehaving server (a tenant's order lookup, a
//! proxy in front of Stripe's OAuth) cannot make this service buffer more than it expects.

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading the answer: {0}")]
    Read(reqwest::Error),
}

/// The whole body of `response`, refused as soon as it passes `limit` bytes (at once when its
/// `Content-Length` does).
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let announced = response
        .content_length()
        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    if announced > limit {
        return Err(ReadError::TooLarge(limit));
    }
    // Room for what the server announced (up to 1 MiB: an announcement alone reserves no
    // more), so a usual answer is one allocation, not a copy each time it grows.
    let mut body = Vec::with_capacity(announced.min(1 << 20));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| ReadError::Read(err.without_url()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
