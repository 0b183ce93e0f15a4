//! The shipped deployment files keep what the security review asked of them: an image that
//! runs as its own user and carries no local data, a compose file that publishes the web port
//! on loopback only and takes every password from the environment, and a README that shows a
//! TLS reverse proxy and a verified database connection.

use std::path::Path;

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines that are not comments.
fn instructions(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn the_image_runs_as_its_own_user_without_local_data() {
    let dockerfile = repo_file("Dockerfile");
    let lines = instructions(&dockerfile);
    let user = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("USER "))
        .expect("a USER instruction");
    assert!(!user.ends_with(" root") && !user.ends_with(" 0"), "{user}");
    let cmd = lines
        .iter()
        .position(|l| l.starts_with("CMD"))
        .expect("CMD");
    let last_user = lines
        .iter()
        .rposition(|l| l.starts_with("USER "))
        .expect("USER");
    assert!(last_user < cmd, "the process starts after switching user");

    let ignore = repo_file(".dockerignore");
    let ignored = instructions(&ignore);
    for must in ["data/", ".env", "target/", "**/secret.key", "**/setup-code"] {
        assert!(ignored.contains(&must), ".dockerignore lacks {must}");
    }
}

#[test]
fn compose_publishes_loopback_only_and_takes_passwords_from_the_environment() {
    let compose = repo_file("docker-compose.yml");
    let lines = instructions(&compose);
    let ports: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ports:")).collect();
    assert!(!ports.is_empty(), "the web port is published");
    for p in ports {
        assert!(p.contains("\"127.0.0.1:"), "published beyond loopback: {p}");
    }
    for secret in ["POSTGRES_PASSWORD", "REDIS_PASSWORD", "SVYAZKA_SECRET_KEY"] {
        assert!(
            compose.contains(&format!("${{{secret}:?")),
            "{secret} must come from the environment, required"
        );
    }
    for l in &lines {
        let lower = l.to_lowercase();
        if lower.contains("password:") || lower.contains("secret_key:") {
            assert!(l.contains("${"), "a literal secret in compose: {l}");
        }
    }
}

#[test]
fn the_readme_shows_a_tls_proxy_and_a_verified_database_connection() {
    let readme = repo_file("README.md");
    assert!(
        readme.contains("reverse proxy"),
        "TLS reverse proxy section"
    );
    assert!(readme.contains("sslmode=verify-full"));
    assert!(readme.contains("SVYAZKA_TRUSTED_PROXIES"));
}
