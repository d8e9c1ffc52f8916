use super::*;

#[test]
fn empty_text_gives_the_documented_defaults() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.server.listen.0.to_string(), "127.0.0.1:8587");
    assert_eq!(c.store.retention_days, 90);
    assert_eq!(c.default_days(), 7);
    assert_eq!(c.timezone.name(), "UTC");
    assert_eq!(c.store.data_dir, PathBuf::from("./data"));
}

#[test]
fn example_config_parses_and_matches_defaults() {
    let text = include_str!("../../config.example.toml");
    let c = Config::parse(text).unwrap();
    let d = Config::default();
    assert_eq!(c.store.retention_days, d.store.retention_days);
    assert_eq!(c.store.hourly_days(), d.store.hourly_days());
    assert_eq!(c.store.cache_mb, d.store.cache_mb);
    assert_eq!(c.server.max_body_bytes, d.server.max_body_bytes);
    assert_eq!(c.server.listen, d.server.listen);
    assert_eq!(c.default_days(), d.default_days());
    assert_eq!(c.detect, d.detect);
}

#[test]
fn bad_detector_settings_name_their_key() {
    let err = Config::parse("[detect.volume]\nmin_ratio = 0.5\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2: key `detect.volume.min_ratio`: must be 1 to 1000"
    );
    let err =
        Config::parse("[detect.volume]\nmin_count = 30\nmin_count_active = 10\n").unwrap_err();
    assert!(
        err.to_string().contains("detect.volume.min_count_active"),
        "{err}"
    );
    for key in ["p_value", "p_value_new_ip"] {
        let err = Config::parse(&format!("[detect.volume]\n{key} = 0.7\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("line 2: key `detect.volume.{key}`: must be between 0 and 0.5 (exclusive)")
        );
    }
    let err = Config::parse("[detect.legacy_tls]\nmin_version = \"SSLv3\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line 2: key `detect.legacy_tls.min_version`"),
        "{err}"
    );
    let err = Config::parse("[detect]\nrecipients = [\"soc@example.com\"]\n").unwrap_err();
    assert!(
        err.to_string().contains("not in mail.allowed_recipients"),
        "{err}"
    );
    let err = Config::parse("[detect]\nwebhooks = [\"ftp://x\"]\n").unwrap_err();
    assert!(err.to_string().contains("detect.webhooks"), "{err}");
    let err = Config::parse("[detect.volume]\nthreshold = 3\n").unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
}

#[test]
fn unknown_key_names_line_and_key() {
    let err = Config::parse("timezone = \"UTC\"\n\n[store]\nretention_dayz = 30\n").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("line 4: key `store.retention_dayz`"),
        "{msg}"
    );
    assert!(msg.contains("unknown field"), "{msg}");
}

#[test]
fn bad_values_name_line_and_key() {
    let err = Config::parse("[server]\nlisten = \"localhost\"\n").unwrap_err();
    assert!(
        err.to_string().starts_with("line 2: key `server.listen`"),
        "{err}"
    );
    let err = Config::parse("timezone = \"Mars/Olympus\"\n").unwrap_err();
    assert!(err.to_string().contains("unknown time zone"), "{err}");
    let err = Config::parse("[store]\ncache_mb = 1\nretention_days = 0\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 3: key `store.retention_days`: must be 1 to 3650, a whole number"
    );
    let err = Config::parse("[report]\ndefault_days = \"seven\"\n").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line 2: key `report.default_days`"),
        "{err}"
    );
}

#[test]
fn only_one_token_source_is_allowed() {
    let err = Config::parse("[server]\ntoken = \"a\"\ntoken_env = \"X\"\n").unwrap_err();
    assert!(err.to_string().contains("set only one of"), "{err}");
}

#[test]
fn token_comes_from_file_or_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tok");
    std::fs::write(&file, "s3cret\n").unwrap();
    let c = Config::parse(&format!("[server]\ntoken_file = {:?}\n", file)).unwrap();
    assert_eq!(
        c.server.token().resolve().unwrap().as_deref(),
        Some("s3cret")
    );
    let c = Config::parse("[server]\ntoken_env = \"SAI_TEST_SURELY_UNSET\"\n").unwrap();
    let err = c.server.token().resolve().unwrap_err();
    assert!(err.contains("SAI_TEST_SURELY_UNSET"), "{err}");
}

#[test]
fn hourly_retention_follows_a_short_retention_unless_set() {
    let c = Config::parse("store.retention_days = 10\n").unwrap();
    assert_eq!(c.store.hourly_days(), 10);
    let c = Config::parse("store.retention_days = 3\n").unwrap();
    assert_eq!(c.default_days(), 3);
    assert_eq!(Config::default().store.hourly_days(), 35);
    let err =
        Config::parse("store.retention_days = 10\nstore.hourly_retention_days = 20\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2: key `store.hourly_retention_days`: must be between 1 and retention_days (10)"
    );
}

#[test]
fn an_empty_inline_token_is_refused() {
    let err = Config::parse("[server]\ntoken = \" \"\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 2: key `server.token`: must not be empty"
    );
}

#[test]
fn each_source_kind_gets_what_it_needs() {
    let ok = Config::parse("[[sources]]\nkind = \"journald\"\n\n[[sources]]\nkind = \"journald\"\ndirectory = \"/var/log/journal/remote\"\n\n[[sources]]\nkind = \"postfix\"\npath = \"/var/log/mail.log\"\n").unwrap();
    assert_eq!(ok.sources.len(), 3);
    assert_eq!(ok.sources[1].name(), "journald:/var/log/journal/remote");
    let err = Config::parse("[[sources]]\nkind = \"postfix\"\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("key `sources.path`: a postfix source needs the log file's path"),
        "{err}"
    );
    let err = Config::parse("[[sources]]\nkind = \"journald\"\npath = \"/var/log/mail.log\"\n")
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("key `sources.path`: is for log files"),
        "{err}"
    );
    let err =
        Config::parse("[[sources]]\nkind = \"journald\"\n\n[[sources]]\nkind = \"journald\"\n")
            .unwrap_err();
    assert!(
        err.to_string().contains("journald is listed twice"),
        "{err}"
    );
    let err = Config::parse("[[sources]]\nkind = \"syslog-ng\"\n").unwrap_err();
    assert!(
        err.to_string().contains("unknown variant `syslog-ng`"),
        "{err}"
    );
}

#[test]
fn values_that_would_panic_later_are_refused_now() {
    let err = Config::parse("[server]\nreport_requests_per_hour = 0\n").unwrap_err();
    assert!(
        err.to_string().contains("server.report_requests_per_hour"),
        "{err}"
    );
    let schedule = |range: &str| {
        format!(
            "[[schedules]]\nname = \"w\"\ncron = \"0 7 * * 1\"\nrange = \"{range}\"\nrecipients = [\"a@example.com\"]\n[mail]\nallowed_recipients = [\"@example.com\"]\n"
        )
    };
    let err = Config::parse(&schedule("last_999999999_days")).unwrap_err();
    assert!(err.to_string().contains("retention_days (90)"), "{err}");
    if let Err(e) = Config::parse(&schedule("last_90_days")) {
        panic!("{e}");
    }
}
