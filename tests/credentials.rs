//! Secrets as systemd credentials, and private files: the daemon started
//! the way the unit starts it ($CREDENTIALS_DIRECTORY) takes the API
//! token, the relay's password and dashboard logins from there, and every
//! file it creates is readable by its user alone.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_replace_secrets_of_the_config_and_files_are_private() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let smtp = SmtpSink::start_with(&[
        "--tls",
        &cert,
        &key,
        "--auth",
        "reports@example.com:from a credential",
    ]);
    // No token, no password and no users in the config: only where the
    // relay is and who authenticates to it.
    let site = Site::new(&format!(
        "store.retention_days = 3650\n[mail]\ntransport = \"smtp\"\nport = {}\nsecurity = \"tls\"\n\
         ca_file = {cert:?}\nusername = \"reports@example.com\"\nallowed_recipients = [\"@example.com\"]\n",
        smtp.port
    ));
    let config = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &site.config,
        config.replace(&format!("server.token = \"{TOKEN}\"\n"), ""),
    )
    .unwrap();

    // As the packaged unit hands them over: the directory's files with the
    // prefix systemd gives them, or a credential loaded under its own name.
    let creds = tempfile::tempdir().unwrap();
    let token = "credential-token-4d8a0c1f9e";
    std::fs::write(
        creds.path().join("smtp-auth-insight_api-token"),
        format!("{token}\n"),
    )
    .unwrap();
    std::fs::write(creds.path().join("smtp-password"), "from a credential\n").unwrap();
    std::fs::write(
        creds.path().join("smtp-auth-insight_dashboard-users"),
        format!("ann:{}\n", password_hash("ann's password")),
    )
    .unwrap();

    let d = site.start_with_env(&[("CREDENTIALS_DIRECTORY", creds.path())]);
    assert_eq!(report_status_with(&d, token).await, 200);
    assert_eq!(report_status_with(&d, TOKEN).await, 401);
    assert!(
        !site.data_dir().join("api-token").exists(),
        "a token was generated although the credential gave one"
    );

    // A dashboard login from the credential.
    assert_eq!(login(&d, "ann", "wrong").await.status(), 401);
    assert_eq!(login(&d, "ann", "ann's password").await.status(), 303);

    // The relay demands AUTH: the password came from the credential.
    let order = serde_json::json!({"start": "2026-11-27", "end": "2026-11-27",
                                   "recipients": ["admin@example.com"]});
    let resp = order_report(&d, token, order).await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_status_with(&d, token, &id, |s| s["status"] == "sent").await;
    assert_eq!(smtp.messages().len(), 1);

    // Everything the daemon created is its user's alone.
    assert!(d.stop().success());
    let data = site.data_dir();
    assert_eq!(mode(&data), 0o700, "the data directory");
    let mut files = 0;
    for entry in walk(&data) {
        let m = mode(&entry);
        if entry.is_dir() {
            assert_eq!(m, 0o700, "{}", entry.display());
        } else {
            assert_eq!(m & 0o077, 0, "{} is {m:o}", entry.display());
            files += 1;
        }
    }
    assert!(files >= 3, "db files, the journal: {files}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn a_bad_dashboard_users_credential_is_named_by_check_config() {
    let site = Site::new("");
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("dashboard-users"), "ann $argon2id$nope\n").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&site.config)
        .arg("check-config")
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("credential dashboard-users, line 1: expected NAME:HASH"),
        "{err}"
    );
}
