//! The settings of the real binary (`--print-config`): flag over
//! `LOG_SERVER_*` environment variable over the TOML file over the default.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use tempfile::TempDir;

/// The effective value of `key` printed by `log-server --print-config`.
fn effective(args: &[&str], env: &[(&str, &str)], key: &str) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_log-server"));
    command.arg("--print-config").args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("LOG_SERVER_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{stdout}"))
        .to_owned()
}

#[test]
fn min_free_bytes_defaults_to_64_mib_and_takes_flag_over_env_over_file() {
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("server.toml");
    std::fs::write(&file, "min_free_bytes = 1000\n").unwrap();
    let file = file.to_str().unwrap();
    let key = "min_free_bytes";
    let env = [("LOG_SERVER_MIN_FREE_BYTES", "2000")];
    assert_eq!(effective(&[], &[], key), (64u64 << 20).to_string());
    assert_eq!(effective(&["--config", file], &[], key), "1000");
    assert_eq!(effective(&["--config", file], &env, key), "2000");
    assert_eq!(
        effective(&["--config", file, "--min-free-bytes", "3000"], &env, key),
        "3000"
    );
    assert_eq!(effective(&["--min-free-bytes", "0"], &[], key), "0");
    let help = Command::new(env!("CARGO_BIN_EXE_log-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("--min-free-bytes"), "{help}");
    assert!(help.contains("LOG_SERVER_MIN_FREE_BYTES"), "{help}");
}

#[test]
fn connection_timeouts_take_flag_over_env_over_file() {
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("server.toml");
    std::fs::write(
        &file,
        "handshake_timeout_ms = 1000\nkeepalive_timeout_ms = 1000\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    assert_eq!(effective(&[], &[], "handshake_timeout_ms"), "5000");
    assert_eq!(effective(&[], &[], "keepalive_timeout_ms"), "20000");
    let env = [
        ("LOG_SERVER_HANDSHAKE_TIMEOUT_MS", "2000"),
        ("LOG_SERVER_KEEPALIVE_TIMEOUT_MS", "2000"),
    ];
    for key in ["handshake_timeout_ms", "keepalive_timeout_ms"] {
        assert_eq!(effective(&["--config", file], &[], key), "1000");
        assert_eq!(effective(&["--config", file], &env, key), "2000");
        let flag = format!("--{}", key.replace('_', "-"));
        assert_eq!(
            effective(&["--config", file, &flag, "3000"], &env, key),
            "3000"
        );
    }
}

#[test]
fn per_connection_caps_default_to_64_and_take_flag_over_env_over_file() {
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("server.toml");
    std::fs::write(
        &file,
        "max_subscriptions_per_connection = 10\nmax_fetches_per_connection = 10\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    for key in [
        "max_subscriptions_per_connection",
        "max_fetches_per_connection",
    ] {
        let env_name = format!("LOG_SERVER_{}", key.to_uppercase());
        let env = [(env_name.as_str(), "20")];
        assert_eq!(effective(&[], &[], key), "64");
        assert_eq!(effective(&["--config", file], &[], key), "10");
        assert_eq!(effective(&["--config", file], &env, key), "20");
        let flag = format!("--{}", key.replace('_', "-"));
        assert_eq!(effective(&["--config", file, &flag, "30"], &env, key), "30");
    }
}

#[test]
fn max_open_files_defaults_to_1024_and_takes_flag_over_env_over_file() {
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("server.toml");
    std::fs::write(&file, "max_open_files = 100\n").unwrap();
    let file = file.to_str().unwrap();
    let env = [("LOG_SERVER_MAX_OPEN_FILES", "200")];
    let flag = ["--config", file, "--max-open-files", "300"];
    assert_eq!(effective(&[], &[], "max_open_files"), "1024");
    assert_eq!(effective(&["--config", file], &[], "max_open_files"), "100");
    assert_eq!(
        effective(&["--config", file], &env, "max_open_files"),
        "200"
    );
    assert_eq!(effective(&flag, &env, "max_open_files"), "300");
}
