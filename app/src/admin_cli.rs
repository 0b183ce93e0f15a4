//! `svyazka admin reset-password`: the way back in for an administrator who forgot the
//! password, for whoever can run commands on the server. Reads the new password from standard
//! input (one line; piped or typed), or generates one when the input is empty, and prints it.
//! Every session of the administrator ends.

use std::io::BufRead;

use svyazka_core::auth::{self, AuthError};
use svyazka_core::{Config, Core};

#[derive(Debug, thiserror::Error)]
pub enum AdminCliError {
    #[error(
        "usage: svyazka admin reset-password  (new password on standard input, or empty to generate one)"
    )]
    Usage,
    #[error(transparent)]
    Config(#[from] svyazka_core::config::ConfigError),
    #[error(transparent)]
    Core(#[from] svyazka_core::StartError),
    #[error("reading standard input: {0}")]
    Stdin(#[from] std::io::Error),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl AdminCliError {
    /// 2 for a password too weak (try again with another), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            AdminCliError::Auth(AuthError::WeakPassword) | AdminCliError::Usage => 2,
            _ => 1,
        }
    }
}

pub async fn run(args: &[String]) -> Result<(), AdminCliError> {
    if args.first().map(String::as_str) != Some("reset-password") {
        return Err(AdminCliError::Usage);
    }
    let core = Core::start(Config::from_env()?)?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let typed = line.trim_end_matches(['\r', '\n']).to_string();
    let (password, generated) = if typed.is_empty() {
        (auth::generate_password(), true)
    } else {
        (typed, false)
    };
    let pw = password.clone();
    let admin = core.db(move |c| auth::reset_password(c, &pw)).await?;
    println!(
        "svyazka: the password of {} was reset; every session of it has ended.",
        admin.username
    );
    if generated {
        println!("New password: {password}");
    }
    Ok(())
}
