//! A plain file host, standing in for the storage messenger gateways hand out download URLs
//! of (ChatAPI's media links point at an S3 bucket): `GET /{name}` answers the bytes put
//! there, with their content type, without any credentials; anything else is 404.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::{App, HttpRequest, HttpResponse, web};

use crate::server::{Running, spawn};

/// Name → (content type, bytes).
type Files = BTreeMap<String, (String, Vec<u8>)>;

#[derive(Clone, Default)]
pub struct FileHost {
    files: Arc<Mutex<Files>>,
    base: Arc<Mutex<String>>,
}

impl FileHost {
    /// A fresh host on a free loopback port.
    pub fn start() -> std::io::Result<(Self, Running)> {
        let host = Self::default();
        let data = web::Data::new(host.clone());
        let running = spawn(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(serve))
        })?;
        *host.base.lock().unwrap_or_else(PoisonError::into_inner) = running.base_url();
        Ok((host, running))
    }

    /// Puts `bytes` at `/{name}`; answers the file's URL.
    pub fn put(&self, name: &str, content_type: &str, bytes: &[u8]) -> String {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), (content_type.to_owned(), bytes.to_vec()));
        let base = self.base.lock().unwrap_or_else(PoisonError::into_inner);
        format!("{base}/{name}")
    }
}

async fn serve(req: HttpRequest, host: web::Data<FileHost>) -> HttpResponse {
    let name = req.path().trim_start_matches('/');
    let found = host
        .files
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
        .cloned();
    match found {
        Some((content_type, bytes)) => HttpResponse::Ok().content_type(content_type).body(bytes),
        None => HttpResponse::NotFound().finish(),
    }
}
