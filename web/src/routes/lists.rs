//! Section pages.

use actix_web::{HttpResponse, get};

use crate::page::see_other;

#[get("/")]
pub async fn home() -> HttpResponse {
    see_other("/providers")
}
