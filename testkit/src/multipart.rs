//! Reading a multipart/form-data body (RFC 7578), as the fakes that take uploads do (the Bot
//! API's `sendDocument`, the Cloud API's media upload).

/// The boundary of a `multipart/form-data; boundary=…` Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return None;
    }
    content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_owned())
}

/// One part of a multipart/form-data body: (name, file name, content).
pub type Part = (String, Option<String>, Vec<u8>);

/// The parts of a multipart/form-data body.
pub fn parse(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    }
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        let head_start = at + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let head = std::str::from_utf8(&body[head_start..head_end]).ok()?;
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), head_end + 4)?;
        let content = body[head_end + 4..next].to_vec();
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
        let field = |key: &str| {
            let marker = format!("{key}=\"");
            let start = disposition.find(&marker)? + marker.len();
            let end = disposition[start..].find('"')? + start;
            Some(disposition[start..end].to_owned())
        };
        parts.push((field("name")?, field("filename"), content));
        at = next + 2 + delimiter.len();
    }
}
