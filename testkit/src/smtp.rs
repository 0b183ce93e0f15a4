//! An SMTP server that keeps what it receives: the subset of RFC 5321 (and RFC 4954's AUTH)
//! a client such as lettre uses to submit one message — greeting, EHLO/HELO, AUTH PLAIN and
//! LOGIN, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT — with the standard reply
//! codes for commands out of sequence (503), unknown commands (500), bad arguments (501) and
//! refused credentials (535). No TLS: Svyazka talks plain SMTP only to loopback servers with
//! its development setting on.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The authenticated user, if the client authenticated.
    pub user: Option<String>,
    /// The reverse-path of MAIL FROM, without the angle brackets.
    pub from: String,
    /// The forward-paths of RCPT TO.
    pub to: Vec<String>,
    /// The message (headers and body) with CRLF line ends, dot-unstuffed.
    pub data: String,
}

impl Mail {
    /// A header's value (unfolded), e.g. `Subject`.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut()
                && (line.starts_with(' ') || line.starts_with('\t'))
            {
                v.push_str(line);
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }

    /// The body after the blank line, as sent (still transfer-encoded).
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    /// The body decoded from its Content-Transfer-Encoding (base64, quoted-printable, or
    /// 7bit/8bit as is), as a mail reader shows a single-part text message.
    pub fn text(&self) -> String {
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body = self.body();
        let bytes = match encoding.as_str() {
            "base64" => B64
                .decode(body.split_whitespace().collect::<String>())
                .unwrap_or_default(),
            "quoted-printable" => unquote(body),
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// Accepted credentials (user, password); `None`: AUTH is not offered.
    credentials: Option<(String, String)>,
    /// A permanent refusal for every RCPT (code, text), to show the server's own words.
    refuse_rcpt: Option<(u16, String)>,
}

/// A running sink; stops when dropped.
pub struct SmtpSink {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on 127.0.0.1 at a free port; accepts `user`/`password` with AUTH.
    pub async fn start(user: &str, password: &str) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            credentials: Some((user.to_string(), password.to_string())),
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(stream, state).await;
                });
            }
        });
        Ok(SmtpSink { port, state, task })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.lock().mails.clone()
    }

    /// Every RCPT TO is refused with `code` and `text` (e.g. 550 "5.1.1 No such user").
    pub fn refuse_recipients(&self, code: u16, text: &str) {
        self.lock().refuse_rcpt = Some((code, text.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a session is (RFC 5321 §4.1.4: MAIL needs a greeting, RCPT a MAIL, DATA a RCPT).
struct Session {
    greeted: bool,
    user: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

async fn session(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut s = Session {
        greeted: false,
        user: None,
        from: None,
        to: Vec::new(),
    };
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end_matches(['\r', '\n']).to_string();
        let (verb, arg) = command
            .split_once(' ')
            .map_or((command.as_str(), ""), |(v, a)| (v, a.trim()));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" if arg.is_empty() => "501 5.5.4 EHLO needs a domain".to_string(),
            "EHLO" => {
                s.greeted = true;
                reset(&mut s);
                let auth = if lock(&state).credentials.is_some() {
                    "250-AUTH PLAIN LOGIN\r\n"
                } else {
                    ""
                };
                format!("250-sink.test greets {arg}\r\n250-8BITMIME\r\n{auth}250 SIZE 10240000")
            }
            "HELO" if arg.is_empty() => "501 5.5.4 HELO needs a domain".to_string(),
            "HELO" => {
                s.greeted = true;
                reset(&mut s);
                "250 sink.test".to_string()
            }
            "AUTH" if !s.greeted => "503 5.5.1 EHLO first".to_string(),
            "AUTH" if s.user.is_some() => "503 5.5.1 Already authenticated".to_string(),
            "AUTH" => {
                let mechanism = arg
                    .split(' ')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                if mechanism != "PLAIN" && mechanism != "LOGIN" {
                    write
                        .write_all(b"504 5.5.4 Unrecognized authentication type\r\n")
                        .await?;
                    continue;
                }
                let (user, pass) = match auth(arg, &mut lines, &mut write).await? {
                    Some(c) => c,
                    None => {
                        write
                            .write_all(b"501 5.5.2 Cannot decode the response\r\n")
                            .await?;
                        continue;
                    }
                };
                let ok = lock(&state)
                    .credentials
                    .as_ref()
                    .is_some_and(|(u, p)| *u == user && *p == pass);
                if ok {
                    s.user = Some(user);
                    "235 2.7.0 Authentication successful".to_string()
                } else {
                    "535 5.7.8 Authentication credentials invalid".to_string()
                }
            }
            "MAIL" if !s.greeted => "503 5.5.1 EHLO first".to_string(),
            "MAIL" if s.from.is_some() => "503 5.5.1 Nested MAIL command".to_string(),
            "MAIL" => match path(arg, "FROM:") {
                Some(p) => {
                    s.from = Some(p);
                    "250 2.1.0 OK".to_string()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".to_string(),
            },
            "RCPT" if s.from.is_none() => "503 5.5.1 MAIL first".to_string(),
            "RCPT" => match (path(arg, "TO:"), lock(&state).refuse_rcpt.clone()) {
                (None, _) => "501 5.5.4 Syntax: RCPT TO:<address>".to_string(),
                (Some(_), Some((code, text))) => format!("{code} {text}"),
                (Some(p), None) => {
                    s.to.push(p);
                    "250 2.1.5 OK".to_string()
                }
            },
            "DATA" if s.to.is_empty() => "503 5.5.1 RCPT first".to_string(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut lines).await?;
                lock(&state).mails.push(Mail {
                    user: s.user.clone(),
                    from: s.from.take().unwrap_or_default(),
                    to: std::mem::take(&mut s.to),
                    data,
                });
                "250 2.0.0 OK queued".to_string()
            }
            "RSET" => {
                reset(&mut s);
                "250 2.0.0 OK".to_string()
            }
            "NOOP" => "250 2.0.0 OK".to_string(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "500 5.5.2 Command not recognised".to_string(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

fn reset(s: &mut Session) {
    s.from = None;
    s.to.clear();
}

/// `FROM:<a@b> SIZE=…` → `a@b` (the null path `<>` is allowed for MAIL).
fn path(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_string())
}

/// AUTH PLAIN (initial response or 334 challenge) or AUTH LOGIN; `None` if undecodable.
async fn auth(
    arg: &str,
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
) -> std::io::Result<Option<(String, String)>> {
    let (mechanism, initial) = arg
        .split_once(' ')
        .map_or((arg, None), |(m, i)| (m, Some(i.trim().to_string())));
    let mut ask = async |prompt: &str| -> std::io::Result<String> {
        write
            .write_all(format!("334 {prompt}\r\n").as_bytes())
            .await?;
        let mut l = String::new();
        lines.read_line(&mut l).await?;
        Ok(l.trim_end_matches(['\r', '\n']).to_string())
    };
    let decode = |s: &str| B64.decode(s).ok().and_then(|b| String::from_utf8(b).ok());
    Ok(match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => {
            let response = match initial {
                Some(i) => i,
                None => ask("").await?,
            };
            decode(&response).and_then(|plain| {
                let mut parts = plain.split('\0');
                let _authzid = parts.next()?;
                Some((parts.next()?.to_string(), parts.next()?.to_string()))
            })
        }
        "LOGIN" => {
            let user = match initial {
                Some(i) => i,
                None => ask("VXNlcm5hbWU6").await?,
            };
            let pass = ask("UGFzc3dvcmQ6").await?;
            decode(&user).zip(decode(&pass))
        }
        _ => None,
    })
}

/// The lines up to the lone ".", with the leading dot of stuffed lines removed (RFC 5321
/// §4.5.2).
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(data);
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text == "." {
            return Ok(data);
        }
        data.push_str(text.strip_prefix('.').unwrap_or(text));
        data.push_str("\r\n");
    }
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` bytes, `=` at a line end joins lines.
fn unquote(body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1..i + 3) == Some(b"\r\n") => i += 3,
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}
