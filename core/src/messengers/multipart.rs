//! The multipart/form-data body of a file upload (the Bot API's `sendDocument`, the Cloud
//! API's media upload).

/// A multipart/form-data body (RFC 7578) with text fields and one file.
pub(crate) struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    pub(crate) fn new() -> Self {
        use rand::Rng;
        let n: u128 = rand::rng().random();
        Self {
            boundary: format!("svyazka-{n:032x}"),
            body: Vec::new(),
        }
    }

    pub(crate) fn text(&mut self, name: &str, value: &str) {
        self.head(&format!("form-data; name=\"{name}\""), None);
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
    }

    pub(crate) fn file(&mut self, name: &str, file_name: &str, bytes: Vec<u8>) {
        self.typed_file(name, file_name, "application/octet-stream", bytes);
    }

    /// A file part with its own `Content-Type` (Meta reads the media's type from it).
    pub(crate) fn typed_file(
        &mut self,
        name: &str,
        file_name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) {
        // Quotes and line breaks cannot be escaped in a header value; they are replaced.
        let safe: String = file_name
            .chars()
            .map(|c| if c == '"' || c.is_control() { '_' } else { c })
            .collect();
        let content_type: String = content_type.chars().filter(|c| !c.is_control()).collect();
        self.head(
            &format!("form-data; name=\"{name}\"; filename=\"{safe}\""),
            Some(&content_type),
        );
        self.body.extend_from_slice(&bytes);
        self.body.extend_from_slice(b"\r\n");
    }

    fn head(&mut self, disposition: &str, content_type: Option<&str>) {
        let mut head = format!(
            "--{}\r\nContent-Disposition: {disposition}\r\n",
            self.boundary
        );
        if let Some(t) = content_type {
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        head.push_str("\r\n");
        self.body.extend_from_slice(head.as_bytes());
    }

    /// The Content-Type header and the body.
    pub(crate) fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}
