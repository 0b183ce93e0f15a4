//! Starting a fake on a loopback port and stopping it again.

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, HttpServer, body::MessageBody};

/// A fake listening on loopback; dropped or stopped, it stops serving.
pub struct Running {
    pub addr: SocketAddr,
    handle: ServerHandle,
}

impl Running {
    /// `http://127.0.0.1:PORT` without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Serve `factory` on `addr` (use port 0 for a free one) in the current tokio runtime.
pub fn spawn<F, T, B>(addr: SocketAddr, factory: F) -> std::io::Result<Running>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(factory)
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(Running { addr, handle })
}
