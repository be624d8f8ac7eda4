//! Requests and answers as the fake sees them, on top of hyper.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;

#[derive(Debug)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into().into_bytes(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "text/html; charset=utf-8",
            body: body.into_bytes(),
        }
    }

    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8",
            body: body.into_bytes(),
        }
    }
}

#[derive(Debug)]
pub enum BodyOutcome {
    Complete(Vec<u8>),
    /// The fault cut the upload off after this many bytes.
    CutOff(u64),
}

#[derive(Debug)]
pub enum BodyError {
    /// The client went away after this many bytes.
    Io(u64),
}

impl Head {
    /// The parts of a request the fake looks at.
    pub fn of<B>(req: &hyper::Request<B>) -> Self {
        Self {
            method: req.method().as_str().to_string(),
            path: req.uri().path().to_string(),
            query: req.uri().query().unwrap_or("").to_string(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (k.as_str().to_string(), v)
                })
                .collect(),
        }
    }
}

impl Response {
    /// As Express answers: `X-Powered-By`, the type, the length.
    pub fn into_hyper(self) -> hyper::Response<Full<Bytes>> {
        let mut r = hyper::Response::new(Full::new(Bytes::from(self.body)));
        *r.status_mut() = hyper::StatusCode::from_u16(self.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        h.insert("x-powered-by", HeaderValue::from_static("Express"));
        h.insert("content-type", HeaderValue::from_static(self.content_type));
        r
    }
}

/// Reads the whole body (hyper answers `Expect: 100-continue` and decodes chunked
/// bodies). With `cut_off`, stops once half the announced length is in and reports
/// that half as what was taken, so the caller can drop the connection.
pub async fn read_body(
    mut body: Incoming,
    head: &Head,
    cut_off: bool,
) -> Result<BodyOutcome, BodyError> {
    let half = head.content_length().unwrap_or(0) / 2;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(BodyError::Io(out.len() as u64));
        };
        if let Some(data) = frame.data_ref() {
            out.extend_from_slice(data);
        }
        // The fake "dies" having taken half the body; the rest is never looked at.
        if cut_off && out.len() as u64 >= half.max(1) {
            return Ok(BodyOutcome::CutOff(half.max(1)));
        }
    }
    Ok(BodyOutcome::Complete(out))
}
