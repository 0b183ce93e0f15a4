//! Starting the binary: unreadable configuration stops it at once with one line naming the
//! variable; a fresh data directory is created on first start.

use std::process::Command;
use std::time::Duration;

fn run_with(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_svyazka"));
    cmd.current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("SVYAZKA_BIND", "127.0.0.1:0");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn malformed_settings_exit_with_one_line_naming_the_variable() {
    for (vars, name) in [
        (
            vec![("DATABASE_URL", "mysql://localhost/db")],
            "DATABASE_URL",
        ),
        (vec![("DATABASE_URL", "postgres://u@h/db")], "REDIS_URL"),
        (
            vec![
                ("DATABASE_URL", "postgres://u@h/db"),
                ("REDIS_URL", "redis://h"),
            ],
            "SVYAZKA_SECRET_KEY",
        ),
        (vec![("SVYAZKA_BIND", "not-an-address")], "SVYAZKA_BIND"),
        (
            vec![("SVYAZKA_WORKER_CONCURRENCY", "many")],
            "SVYAZKA_WORKER_CONCURRENCY",
        ),
        (
            vec![("SVYAZKA_SECRET_KEY", "too-short")],
            "SVYAZKA_SECRET_KEY",
        ),
    ] {
        let (code, stderr) = run_with(&vars);
        assert_ne!(code, Some(0), "{vars:?} must not start");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{vars:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.contains(name),
            "{vars:?}: {stderr:?} should name {name}"
        );
    }
}

#[test]
fn first_start_creates_the_data_directory_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_svyazka"))
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("SVYAZKA_BIND", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The banner is printed right after the listener is bound.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(up, "the app listened");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("embedded mode")
            && stdout.contains("svyazka.db")
            && stdout.contains("open http://localhost"),
        "{stdout}"
    );
    for f in ["svyazka.db", "jobs.db", "secret.key"] {
        assert!(dir.path().join("data").join(f).exists(), "{f} created");
    }
}
