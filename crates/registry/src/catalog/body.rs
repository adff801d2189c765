//! A rendered response body, kept as shared bytes with its strong ETag, and its gzip
//! form made on first demand with an ETag of its own.

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::HeaderValue;
use sha2::{Digest, Sha256};

/// Bodies smaller than this are sent uncompressed: gzip's header would eat the gain.
const MIN_COMPRESS_LEN: usize = 512;

#[derive(Debug)]
pub struct Body {
    bytes: Bytes,
    etag: HeaderValue,
    gzip: OnceLock<Option<Encoded>>,
}

/// A compressed form of a body.
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Bytes,
    pub etag: HeaderValue,
}

impl Body {
    pub fn new(bytes: impl Into<Bytes>) -> Body {
        let bytes = bytes.into();
        Body { etag: strong_etag(&bytes), bytes, gzip: OnceLock::new() }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The gzip form, or `None` when the body is too small to gain from compression.
    pub fn gzip(&self) -> Option<&Encoded> {
        self.gzip
            .get_or_init(|| {
                if self.bytes.len() < MIN_COMPRESS_LEN {
                    return None;
                }
                let mut encoder = GzEncoder::new(Vec::with_capacity(self.bytes.len() / 4), Compression::default());
                encoder.write_all(&self.bytes).ok()?;
                let compressed = encoder.finish().ok()?;
                // A strong tag names exact bytes, so the compressed form gets its own.
                Some(Encoded { etag: strong_etag(&compressed), bytes: Bytes::from(compressed) })
            })
            .as_ref()
    }
}

/// A strong entity tag: the first 128 bits of the body's SHA-256, in hex and quotes.
fn strong_etag(bytes: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(bytes);
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    HeaderValue::from_str(&tag).expect("hex digits form a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_depends_on_bytes() {
        let a = Body::new("{\"a\":1}");
        let b = Body::new("{\"a\":2}");
        assert_ne!(a.etag(), b.etag());
        assert_eq!(a.etag(), Body::new("{\"a\":1}").etag());
    }

    #[test]
    fn gzip_has_own_etag() {
        let text = "x".repeat(4096);
        let body = Body::new(text);
        let gzip = body.gzip().expect("large bodies compress");
        assert_ne!(&gzip.etag, body.etag());
        assert!(gzip.bytes.len() < body.len());
    }

    #[test]
    fn small_body_not_compressed() {
        assert!(Body::new("{}").gzip().is_none());
    }
}
