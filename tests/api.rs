//! The HTTP API of the real daemon: every number of the report checked
//! against what was posted, bad input refused without harm, idempotency,
//! time zones, retention.

mod common;

use chrono::{Days, NaiveDate, Utc};
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

const TLS: [&str; 5] = ["none", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
/// Spellings an MTA might write for each class, posted instead of the key.
const SPELLINGS: [&[&str]; 5] = [
    &["none", "NONE"],
    &["TLSv1", "tlsv1.0"],
    &["TLSv1.1", "TLS1.1"],
    &["TLSv1.2", "tls1.2"],
    &["TLSv1.3", "TLS1.3"],
];

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Expected counts: (date, sender) -> per-TLS counts.
type Model = BTreeMap<(NaiveDate, String), [u64; 5]>;

fn tls_obj(c: &[u64; 5]) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in TLS.iter().zip(c) {
        m.insert((*k).into(), (*v).into());
    }
    Value::Object(m)
}

/// Expected failed logins: (date, username) -> count.
type Failures = BTreeMap<(NaiveDate, String), u64>;

/// The report the models predict for a range and optional domain.
fn expected(
    (model, failures): (&Model, &Failures),
    start: NaiveDate,
    end: NaiveDate,
    domain: Option<&str>,
) -> Value {
    let keep = |s: &str| domain.is_none_or(|d| s.rsplit_once('@').map_or("", |x| x.1) == d);
    let mut daily = Vec::new();
    let mut total = [0u64; 5];
    let mut per_sender: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    let mut day = start;
    while day <= end {
        let mut c = [0u64; 5];
        for ((d, s), v) in model {
            if *d == day && keep(s) {
                for i in 0..5 {
                    c[i] += v[i];
                    total[i] += v[i];
                    per_sender.entry(s.clone()).or_default()[i] += v[i];
                }
            }
        }
        let failed: u64 = failures
            .iter()
            .filter(|((d, s), _)| *d == day && keep(s))
            .map(|(_, n)| n)
            .sum();
        daily.push(
            serde_json::json!({"date": day.to_string(), "messages": c.iter().sum::<u64>(),
                                      "tls": tls_obj(&c), "auth_failures": failed}),
        );
        day = day + Days::new(1);
    }
    let mut failed_users: BTreeMap<&str, u64> = BTreeMap::new();
    for ((d, s), n) in failures {
        if (start..=end).contains(d) && keep(s) {
            *failed_users.entry(s).or_default() += n;
        }
    }
    let mut failed_users: Vec<(&str, u64)> = failed_users.into_iter().collect();
    failed_users.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let failed_total: u64 = failed_users.iter().map(|(_, n)| n).sum();
    let failed_users: Vec<Value> = failed_users
        .iter()
        .map(|(s, n)| serde_json::json!({"sender": s, "count": n}))
        .collect();
    let mut senders: Vec<(String, [u64; 5])> = per_sender.into_iter().collect();
    senders.sort_by(|a, b| {
        b.1.iter()
            .sum::<u64>()
            .cmp(&a.1.iter().sum::<u64>())
            .then(a.0.cmp(&b.0))
    });
    let senders: Vec<Value> = senders
        .iter()
        .map(|(s, c)| {
            serde_json::json!({"sender": s, "domain": s.rsplit_once('@').map_or("", |x| x.1),
                "messages": c.iter().sum::<u64>(), "tls": tls_obj(c), "held": 0})
        })
        .collect();
    serde_json::json!({
        "start": start.to_string(), "end": end.to_string(), "domain": domain, "timezone": "UTC",
        "summary": {"senders": senders.len(), "messages": total.iter().sum::<u64>(), "tls": tls_obj(&total),
                    "auth_failures": failed_total, "held": 0},
        "daily": daily, "senders": senders, "auth_failures": failed_users,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn report_counts_every_posted_event_by_day_domain_and_tls() {
    let site = Site::new("");
    let d = site.start();
    let senders = [
        ("Alice@Example.com", "alice@example.com"),
        ("bob@example.com", "bob@example.com"),
        ("carol@other.org", "carol@other.org"),
        ("svc-scanner", "svc-scanner"),
        (
            "<script>alert(1)</script>@example.com",
            "<script>alert(1)</script>@example.com",
        ),
    ];
    let mut rng = Rng(0x5eed);
    let mut model = Model::new();
    let mut failures = Failures::new();
    let mut failed_by_tls = [0u64; 5];
    let mut lines = Vec::new();
    for i in 0..400 {
        let offset = [0u64, 1, 3][rng.below(3) as usize];
        let day = today() - Days::new(offset);
        let (posted, stored) = senders[rng.below(senders.len() as u64) as usize];
        let t = rng.below(5) as usize;
        let spelling = SPELLINGS[t][rng.below(2) as usize];
        let ts = format!("{day}T{:02}:{:02}:00Z", rng.below(2), rng.below(60));
        if i % 8 == 7 {
            // A failed login: not a message.
            let mut line: Value =
                serde_json::from_str(&event_line(&ts, posted, spelling, None)).unwrap();
            line["result"] = "auth_failed".into();
            line["id"] = format!("e{i}").into();
            lines.push(line.to_string());
            *failures.entry((day, stored.to_owned())).or_default() += 1;
            failed_by_tls[t] += 1;
            continue;
        }
        lines.push(event_line(&ts, posted, spelling, Some(&format!("e{i}"))));
        model.entry((day, stored.to_owned())).or_default()[t] += 1;
    }
    // Half as NDJSON, half as a JSON array.
    let (nd, arr) = lines.split_at(200);
    let (s, body) = post_events(&d, nd.join("\n")).await;
    assert_eq!(
        (s, &body),
        (202, &serde_json::json!({"accepted": 200, "duplicates": 0}))
    );
    let (s, body) = post_events(&d, format!("[{}]", arr.join(",\n"))).await;
    assert_eq!(
        (s, &body),
        (202, &serde_json::json!({"accepted": 200, "duplicates": 0}))
    );

    let start = today() - Days::new(4);
    let (s, got) = report(&d, &format!("start={start}&end={}", today())).await;
    assert_eq!(s, 200);
    assert_eq!(got, expected((&model, &failures), start, today(), None));
    assert_eq!(
        got["daily"][0]["messages"], 0,
        "empty first day is listed with zeros"
    );

    for domain in ["example.com", "other.org"] {
        let (_, got) = report(
            &d,
            &format!("start={start}&end={}&domain={domain}", today()),
        )
        .await;
        assert_eq!(
            got,
            expected((&model, &failures), start, today(), Some(domain)),
            "domain {domain}"
        );
    }
    let (_, got) = report(&d, &format!("start={start}&domain=(none)")).await;
    assert_eq!(got["senders"][0]["sender"], "svc-scanner");
    assert_eq!(got["senders"].as_array().unwrap().len(), 1);

    // Default range: the last 7 days ending today.
    let (_, got) = report(&d, "").await;
    assert_eq!(got["daily"].as_array().unwrap().len(), 7);
    assert_eq!(got["end"], today().to_string());
    let messages: u64 = model.values().flatten().sum();
    assert_eq!(got["summary"]["messages"], messages);
    assert_eq!(messages + failed_by_tls.iter().sum::<u64>(), 400);

    // /metrics counts the same events by result and TLS version.
    let metrics = metrics_text(&d).await;
    for (t, key) in TLS.iter().enumerate() {
        let sent: u64 = model.values().map(|c| c[t]).sum();
        for (result, n) in [("accepted", sent), ("auth_failed", failed_by_tls[t])] {
            let series =
                format!("smtp_auth_insight_submissions_total{{result=\"{result}\",tls=\"{key}\"}}");
            assert_eq!(metric(&metrics, &series), Some(n), "{series}\n{metrics}");
        }
    }

    // The CLI reads the same numbers from the store once the daemon is gone.
    assert!(d.stop().success());
    let out = site.cli(&["report", "--start", &start.to_string(), "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli, expected((&model, &failures), start, today(), None));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_4xx_and_leaves_the_store_unchanged() {
    let site = Site::new("server.max_body_bytes = 65536");
    let d = site.start();
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let good = event_line(&now, "keep@example.com", "TLSv1.3", Some("k1"));
    assert_eq!(post_events(&d, good.clone()).await.0, 202);
    let (_, before) = report(&d, "").await;

    let long = "a".repeat(10_000);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "invalid JSON",
            format!("{good}\n{{\"ts\": oops}}"),
            400,
            "line 2: invalid JSON",
        ),
        (
            "missing field",
            format!("{good}\n{{\"ts\":\"{now}\",\"sender\":\"x@y\"}}"),
            400,
            "line 2: field `tls`: is required",
        ),
        (
            "bad timestamp",
            r#"{"ts":"yesterday","sender":"x@y","tls":"none"}"#.into(),
            400,
            "field `ts`",
        ),
        (
            "unknown TLS",
            format!(r#"{{"ts":"{now}","sender":"x@y","tls":"SSLv3"}}"#),
            400,
            "unknown TLS version \"SSLv3\"",
        ),
        ("empty body", String::new(), 400, "no events"),
        (
            "CRLF sender",
            format!(r#"{{"ts":"{now}","sender":"x\r\nBcc: evil@x","tls":"none"}}"#),
            400,
            "control character",
        ),
        (
            "10 kB sender",
            format!(r#"{{"ts":"{now}","sender":"{long}","tls":"none"}}"#),
            400,
            "is 10000 bytes long",
        ),
        (
            "wrong type",
            format!(r#"{{"ts":"{now}","sender":["x"],"tls":"none"}}"#),
            400,
            "expected a string, found an array",
        ),
        (
            "oversized body",
            format!("{good}\n").repeat(1000),
            413,
            "larger than the limit of 65536 bytes",
        ),
    ];
    for (what, body, status, needle) in cases {
        let (s, json) = post_events(&d, body).await;
        assert_eq!(s, status, "{what}: {json}");
        let msg = json["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{what}: {msg}");
    }

    let c = client();
    let no_token = c
        .post(d.url("/api/v1/events"))
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let wrong = c
        .post(d.url("/api/v1/events"))
        .bearer_auth("nope")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let unauth_report = c.get(d.url("/api/v1/report")).send().await.unwrap();
    assert_eq!(unauth_report.status(), 401);

    for (query, status, needle) in [
        ("start=2026-13-01", 400, "not a date"),
        ("start=2026-11-10&end=2026-11-01", 422, "is after end"),
        ("start=2001-01-01&end=2001-01-02", 422, "oldest day kept"),
        ("end=2999-01-01", 422, "in the future"),
        ("color=blue", 400, "unknown field"),
    ] {
        let (s, json) = report(&d, query).await;
        assert_eq!(s, status, "{query}: {json}");
        assert!(
            json["error"].as_str().unwrap().contains(needle),
            "{query}: {json}"
        );
    }

    let (_, after) = report(&d, "").await;
    assert_eq!(before, after, "refused requests changed the store");
    let health = c.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = metrics_text(&d).await;
    assert!(
        metrics.contains("smtp_auth_insight_ingest_rejected_total{reason=\"bad_request\"} 8"),
        "{metrics}"
    );
    assert!(
        metrics.contains("smtp_auth_insight_ingest_rejected_total{reason=\"too_large\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("smtp_auth_insight_events_total{outcome=\"accepted\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn markup_in_sender_names_is_stored_verbatim_and_escaped_in_json() {
    let site = Site::new("");
    let d = site.start();
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let hostile = "<img src=x onerror=alert(1)>\"';--";
    let (s, _) = post_events(&d, event_line(&now, hostile, "none", None)).await;
    assert_eq!(s, 202);
    let resp = client()
        .get(d.url("/api/v1/report"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let text = resp.text().await.unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["senders"][0]["sender"], hostile);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_posted_twice_is_counted_once_also_across_a_restart() {
    let site = Site::new("");
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let body = [
        event_line(&now, "a@x.org", "TLSv1.2", Some("mx1:AAA")),
        event_line(&now, "a@x.org", "TLSv1.2", Some("mx1:AAA")),
        event_line(&now, "a@x.org", "TLSv1.2", Some("mx1:BBB")),
        event_line(&now, "a@x.org", "TLSv1.2", None),
    ]
    .join("\n");
    let d = site.start();
    assert_eq!(
        post_events(&d, body.clone()).await.1,
        serde_json::json!({"accepted": 3, "duplicates": 1})
    );
    d.kill9();
    let d = site.start();
    let only_ids: String = body.lines().take(3).collect::<Vec<_>>().join("\n");
    assert_eq!(
        post_events(&d, only_ids).await.1,
        serde_json::json!({"accepted": 0, "duplicates": 3})
    );
    let (_, r) = report(&d, "").await;
    assert_eq!(r["summary"]["messages"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_at_23_30_utc_lands_on_the_next_day_at_utc_plus_2() {
    let yesterday = today() - Days::new(1);
    let ts = format!("{yesterday}T23:30:00Z");
    for (tz, day) in [("Africa/Johannesburg", today()), ("UTC", yesterday)] {
        let site = Site::new(&format!("timezone = {tz:?}"));
        let d = site.start();
        assert_eq!(
            post_events(&d, event_line(&ts, "late@x.org", "TLSv1.3", None))
                .await
                .0,
            202
        );
        let (_, r) = report(&d, &format!("start={yesterday}&end={yesterday}")).await;
        let (_, r2) = report(&d, &format!("start={}", yesterday + Days::new(1))).await;
        let on_day = |rep: &Value| rep["daily"][0]["messages"].as_u64().unwrap();
        let (y, t) = (on_day(&r), on_day(&r2));
        assert_eq!(
            if day == yesterday { (y, t) } else { (t, y) },
            (1, 0),
            "{tz}"
        );
        assert_eq!(r["timezone"], tz);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_older_than_retention_leaves_reports_and_disk() {
    let site = Site::new("store.retention_days = 10");
    let old_day = today() - Days::new(6);
    let d = site.start();
    let body = [
        event_line(
            &format!("{old_day}T12:00:00Z"),
            "old@x.org",
            "TLSv1.0",
            Some("o1"),
        ),
        event_line(
            &format!("{}T00:10:00Z", today()),
            "new@x.org",
            "TLSv1.3",
            Some("n1"),
        ),
    ]
    .join("\n");
    assert_eq!(post_events(&d, body).await.0, 202);
    let (_, r) = report(&d, &format!("start={old_day}")).await;
    assert_eq!(r["daily"][0]["messages"], 1);
    assert!(d.stop().success());

    site.write_config("store.retention_days = 3");
    let d = site.start();
    let (s, r) = report(&d, &format!("start={old_day}")).await;
    assert_eq!(s, 422, "{r}");
    let (_, r) = report(&d, "").await;
    assert_eq!(r["summary"]["messages"], 1);
    assert_eq!(r["senders"][0]["sender"], "new@x.org");
    // An event of the purged day is now too old to be stored at all.
    let (s, body) = post_events(
        &d,
        event_line(&format!("{old_day}T13:00:00Z"), "old@x.org", "none", None),
    )
    .await;
    assert_eq!(
        (s, &body),
        (
            202,
            &serde_json::json!({"accepted": 0, "duplicates": 0, "too_old": 1})
        )
    );
    assert!(d.stop().success());

    // On disk: no key of the old day or sender is left.
    let store = smtp_auth_insight::store::Store::open(&smtp_auth_insight::store::StoreOptions {
        path: site.data_dir().join("db"),
        tz: chrono_tz::Tz::UTC,
        retention: smtp_auth_insight::store::Retention {
            days: 3,
            hourly_days: 3,
        },
        cache_bytes: 1 << 20,
        min_free_bytes: 0,
    })
    .unwrap();
    use smtp_auth_insight::store::keys;
    assert_eq!(store.count_keys(keys::DAILY), 1);
    assert_eq!(store.count_keys(keys::ID), 1);
    assert_eq!(store.sender_info("old@x.org").unwrap(), None);
    assert!(store.sender_info("new@x.org").unwrap().is_some());
    assert!(store.hourly("old@x.org").unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_token_is_private_and_never_logged() {
    let site = Site::new("");
    // Drop the configured token so the daemon generates one.
    let text = std::fs::read_to_string(&site.config)
        .unwrap()
        .replace(&format!("server.token = \"{TOKEN}\"\n"), "");
    std::fs::write(&site.config, text).unwrap();
    let d = site.start();
    let path = site.data_dir().join("api-token");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(report_status_with(&d, &token).await, 200);
    assert!(d.log_text().contains("api-token"));
    assert!(!d.log_text().contains(&token));
    // The same token is used after a restart.
    assert!(d.stop().success());
    let d = site.start();
    assert_eq!(report_status_with(&d, &token).await, 200);
}
