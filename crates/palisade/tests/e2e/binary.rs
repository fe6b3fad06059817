//! The `palisade` executable itself: bad settings stop it at start with a
//! message naming the key, and it exits non-zero.

use std::process::Command;

fn serve_with(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = crate::support::temp_dir("config");
    let file = dir.join("palisade.toml");
    std::fs::write(&file, config).expect("write config");
    let output = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["serve", "--config"])
        .arg(&file)
        .envs(env.iter().copied())
        .env("PALISADE_DATA_DIR", dir.join("data"))
        .output()
        .expect("palisade runs");
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Config file text, environment overrides, and the key the refusal must name.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn a_bad_config_value_is_refused_at_start_naming_the_key() {
    let cases: [Case; 6] = [
        (
            "[server]\npublic_addr = \"not an address\"\n",
            &[],
            "server.public_addr",
        ),
        (
            "[server]\nops_addr = \"0.0.0.0:9999\"\n",
            &[],
            "server.ops_addr",
        ),
        ("[database]\nurl = \"mysql://x\"\n", &[], "database.url"),
        ("[sessions]\nidle_minuts = 5\n", &[], "idle_minuts"),
        ("", &[("PALISADE_LOG__FORMAT", "xml")], "log.format"),
        ("[log]\nlevel = \"loud\"\n", &[], "log.level"),
    ];
    for (config, env, key) in cases {
        let (ok, stderr) = serve_with(config, env);
        assert!(!ok, "{key}: must not start");
        assert!(
            stderr.contains(key),
            "{key}: stderr names the key: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_config_file_that_is_not_toml_is_refused_with_its_path() {
    let (ok, stderr) = serve_with("this is = = not toml", &[]);
    assert!(!ok);
    assert!(
        stderr.contains("palisade.toml") && stderr.contains("not valid TOML"),
        "{stderr}"
    );
}

#[test]
fn tenant_create_provisions_a_tenant_once_and_shows_the_password_once() {
    let dir = crate::support::temp_dir("tenant");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["tenant", "create", "--slug", "acme", "--name", "Acme Teas"])
            .args([
                "--owner-email",
                "boss@acme.example",
                "--allowed-origin",
                "https://acme.example",
            ])
            .env("PALISADE_DATA_DIR", dir.join("data"))
            .output()
            .expect("palisade runs")
    };
    let first = run();
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        stdout.contains("boss@acme.example") && stdout.contains("data-widget-key=\"pk_"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Password:   unchanged"),
        "a new owner gets a password: {stdout}"
    );
    let again = run();
    let stdout = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success());
    assert!(stdout.contains("Password:   unchanged"), "{stdout}");

    let bad = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args([
            "tenant",
            "create",
            "--slug",
            "Bad Slug",
            "--name",
            "x",
            "--owner-email",
            "a@b.example",
        ])
        .env("PALISADE_DATA_DIR", dir.join("data"))
        .output()
        .expect("palisade runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("slug"));
    let _ = std::fs::remove_dir_all(&dir);
}
