//! `testkit`: run a fake upstream on its own, to try Svyazka end to end without real accounts.
//!
//!     cargo run -p svyazka-testkit -- retailcrm [PORT]   (default 9101)
//!     cargo run -p svyazka-testkit -- chatapi [PORT]     (default 9102)
//!     cargo run -p svyazka-testkit -- telegram [PORT]    (default 9103)

#[actix_web::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = |default: u16| -> u16 {
        match args.get(1).map(|p| p.parse::<u16>()) {
            None => default,
            Some(Ok(p)) => p,
            Some(Err(_)) => {
                eprintln!("testkit: PORT must be a number");
                std::process::exit(2);
            }
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("retailcrm") => svyazka_testkit::retailcrm::serve_standalone(port(9101)).await,
        Some("chatapi") => svyazka_testkit::chatapi::serve_standalone(port(9102)).await,
        Some("telegram") => svyazka_testkit::telegram::serve_standalone(port(9103)).await,
        _ => {
            eprintln!("usage: testkit retailcrm|chatapi|telegram [PORT]");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("testkit: {e}");
        std::process::exit(1);
    }
}
