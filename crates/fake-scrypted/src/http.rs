//! The small HTTP/1.1 subset the fake server speaks.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_HEAD: usize = 64 * 1024;

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

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        413 => "Payload Too Large",
        500 => "Internal Server Error",
        _ => "Unknown",
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
    Malformed,
}

#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(8192),
        }
    }

    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// None: the client closed the connection between requests.
    pub async fn read_head(&mut self) -> std::io::Result<Option<Head>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return parse_head(&head).map(Some);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(std::io::Error::other("request head too large"));
            }
            if self.fill().await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Reads the whole body. With `cut_off`, stops halfway through (at least one
    /// byte in) and reports how much was read, so the caller can drop the socket.
    pub async fn read_body(
        &mut self,
        head: &Head,
        cut_off: bool,
    ) -> Result<BodyOutcome, BodyError> {
        if head
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            let _ = self
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await;
        }
        let mut body = Vec::new();
        if head.chunked() {
            loop {
                let line = self.read_line(&body).await?;
                let size_text = line.split(';').next().unwrap_or("").trim().to_string();
                let size =
                    usize::from_str_radix(&size_text, 16).map_err(|_| BodyError::Malformed)?;
                if size == 0 {
                    // Trailers, then the blank line.
                    while !self.read_line(&body).await?.is_empty() {}
                    return Ok(BodyOutcome::Complete(body));
                }
                self.read_exact_into(&mut body, size, cut_off).await?;
                if cut_off {
                    return Ok(BodyOutcome::CutOff(body.len() as u64));
                }
                let crlf = self.read_line(&body).await?;
                if !crlf.is_empty() {
                    return Err(BodyError::Malformed);
                }
            }
        }
        let len = head.content_length().unwrap_or(0) as usize;
        self.read_exact_into(&mut body, len, cut_off).await?;
        if cut_off {
            return Ok(BodyOutcome::CutOff(body.len() as u64));
        }
        Ok(BodyOutcome::Complete(body))
    }

    async fn read_line(&mut self, body: &[u8]) -> Result<String, BodyError> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(BodyError::Malformed);
            }
            match self.fill().await {
                Ok(0) | Err(_) => return Err(BodyError::Io(body.len() as u64)),
                Ok(_) => {}
            }
        }
    }

    async fn read_exact_into(
        &mut self,
        body: &mut Vec<u8>,
        len: usize,
        cut_off: bool,
    ) -> Result<(), BodyError> {
        let want = if cut_off { (len / 2).max(1) } else { len };
        let target = body.len() + want;
        loop {
            let take = (target - body.len()).min(self.buf.len());
            body.extend(self.buf.drain(..take));
            if body.len() >= target {
                return Ok(());
            }
            match self.fill().await {
                Ok(0) | Err(_) => return Err(BodyError::Io(body.len() as u64)),
                Ok(_) => {}
            }
        }
    }

    pub async fn write_response(&mut self, r: &Response) -> std::io::Result<()> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nX-Powered-By: Express\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            r.status,
            reason(r.status),
            r.content_type,
            r.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&r.body);
        self.stream.write_all(&out).await?;
        self.stream.flush().await
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(bytes: &[u8]) -> std::io::Result<Head> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(std::io::Error::other("bad request line"));
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Head {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
    })
}

impl Conn {
    /// The socket, for a protocol switch (WebSocket). A client waits for the 101
    /// before sending more, so nothing is left in the buffer.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}
