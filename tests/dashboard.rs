//! The dashboard in a real headless Chromium (Debian's chromium driven
//! through chromedriver): login, tile, charts, filters, table views,
//! sender details, escaping of hostile names, and the report request form
//! down to the mail on a real SMTP server. Screenshots of each state go to
//! target/dashboard-screenshots/.

mod common;

use common::webdriver::Driver;
use common::*;
use serde_json::Value;

const XSS: &str = "<img src=x onerror=alert(1)>@example.com";

fn site(smtp_port: u16) -> Site {
    let site = Site::new(&format!(
        "store.retention_days = 3650\n[mail]\ntransport = \"smtp\"\nport = {smtp_port}\nsecurity = \"none\"\n\
         retry_initial_seconds = 1\nallowed_recipients = [\"@example.com\"]\n"
    ));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");
    assert!(
        site.cli(&[
            "import",
            "--format",
            "postfix",
            &format!("{dir}/postfix-rsyslog.log")
        ])
        .status
        .success()
    );
    // Recent traffic, a hostile sender name among it.
    let now = chrono::Utc::now();
    let mut lines = Vec::new();
    for day in 0..5 {
        let ts = (now - chrono::TimeDelta::days(day)).to_rfc3339();
        lines.push(event_line(&ts, XSS, "none", None));
        for i in 0..(day + 2) {
            lines.push(event_line(
                &ts,
                &format!("user{i}@example.com"),
                "TLSv1.3",
                None,
            ));
            lines.push(event_line(
                &ts,
                &format!("team{i}@example.net"),
                "TLSv1.2",
                None,
            ));
        }
    }
    // Failed logins: a username someone guessed (it never sent), and a
    // user who mistyped twice; that user once sent as another address.
    let ts = now.to_rfc3339();
    let failed = |user: &str| {
        serde_json::json!({"ts": ts, "sender": user, "tls": "TLSv1.2",
                           "result": "auth_failed", "client_ip": "203.0.113.66"})
        .to_string()
    };
    lines.extend((0..6).map(|_| failed("guess@example.com")));
    lines.extend((0..2).map(|_| failed("user0@example.com")));
    lines.push(
        serde_json::json!({"ts": ts, "sender": "user0@example.com", "tls": "TLSv1.3",
                           "envelope_from": "ceo@elsewhere.example"})
        .to_string(),
    );
    let file = site.dir.path().join("recent.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    assert!(
        site.cli(&["import", "--format", "ndjson", file.to_str().unwrap()])
            .status
            .success()
    );
    site
}

async fn api_report(d: &Daemon, query: &str) -> Value {
    report(d, query).await.1
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_works_in_a_real_browser() {
    let smtp = SmtpSink::start();
    let site = site(smtp.port);
    let d = site.start();
    let base = d.url("");

    // Without a session: pages go to the login page, forms are refused.
    let no_cookie = client().get(d.url("/senders.csv")).send().await.unwrap();
    assert!(
        no_cookie.url().path().ends_with("/login"),
        "{}",
        no_cookie.url()
    );
    let refused = client()
        .post(d.url("/request"))
        .form(&[("csrf", "x"), ("recipients", "admin@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let b = Driver::start().await;
    b.goto(&base).await;
    assert!(b.url().await.ends_with("/login"), "{}", b.url().await);
    let token = b.find("#token").await;
    b.type_into(&token, "wrong").await;
    b.click(&b.find("#login").await).await;
    b.wait_text(".error", |t| {
        t.contains("Wrong user name, password or token")
    })
    .await;
    b.type_into(&b.find("#token").await, TOKEN).await;
    b.click(&b.find("#login").await).await;
    let tile = b.wait_text("#tile-senders", |t| !t.is_empty()).await;
    let api = api_report(&d, "").await;
    assert_eq!(tile, api["summary"]["senders"].to_string(), "tile = API");
    b.screenshot("1-dashboard").await;

    // The tile opens the summary panel.
    b.click(&b.find("#insight summary").await).await;
    assert_eq!(
        b.script("return document.querySelector('#insight').open")
            .await,
        true
    );
    let panel = b.text(&b.find("#summary-panel").await).await;
    assert!(
        panel.contains(&format!("{} messages", api["summary"]["messages"])),
        "{panel}"
    );
    b.screenshot("2-summary-panel").await;

    // Hostile names are text: no image element, no dialog.
    assert!(
        b.source()
            .await
            .contains("&lt;img src=x onerror=alert(1)&gt;@example.com")
    );
    assert_eq!(
        b.script("return document.querySelectorAll('img').length")
            .await,
        0
    );
    assert!(!b.dialog_open().await);

    // Failed logins: the card agrees with the API; a guessed username is
    // marked as one that sent nothing, and its page shows its failures.
    let total = b.wait_text("#failures-total", |t| !t.is_empty()).await;
    assert_eq!(total, api["summary"]["auth_failures"].to_string());
    assert!(
        api["summary"]["auth_failures"].as_u64().unwrap() >= 8,
        "{api}"
    );
    assert_eq!(api["auth_failures"][0]["sender"], "guess@example.com");
    assert_eq!(api["auth_failures"][0]["count"], 6);
    let card = b.text(&b.find("#failed-users").await).await;
    assert!(
        card.contains("guess@example.com (sent no message)"),
        "{card}"
    );
    b.click(&b.find("#failed-users .sender-link").await).await;
    assert_eq!(
        b.wait_text("#sender-name", |t| !t.is_empty()).await,
        "guess@example.com"
    );
    assert_eq!(b.text(&b.find("#sender-failures").await).await, "6");
    b.screenshot("2b-guessed-username").await;
    // A user's page: its failed logins and the address it sent as.
    b.goto(&format!("{base}/senders/user0%40example.com")).await;
    assert_eq!(
        b.wait_text("#sender-failures", |t| !t.is_empty()).await,
        "2"
    );
    let envelopes = b.text(&b.find("#envelopes").await).await;
    assert!(envelopes.contains("ceo@elsewhere.example"), "{envelopes}");
    b.goto(&base).await;
    b.find("#tile-senders").await;

    // The volume chart: one bar per day, each with its count.
    let bars = b.script(
        "return [...document.querySelectorAll('#chart rect.bar')].map(r => Number(r.dataset.count))",
    ).await;
    let daily: Vec<u64> = api["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["messages"].as_u64().unwrap())
        .collect();
    assert_eq!(bars, serde_json::json!(daily));

    // Another domain: chart and table follow.
    b.click(&b.find("#domain option[value='example.net']").await)
        .await;
    b.click(&b.find("#apply").await).await;
    b.wait_text("#details", |t| t.contains("team0@example.net"))
        .await;
    let rows = b.find_all("#details tbody tr").await.len();
    let net = api_report(&d, "domain=example.net").await;
    assert_eq!(rows as u64, net["summary"]["senders"].as_u64().unwrap());
    assert!(
        !b.text(&b.find("#details").await)
            .await
            .contains("example.com")
    );
    let bars = b.script(
        "return [...document.querySelectorAll('#chart rect.bar')].reduce((a, r) => a + Number(r.dataset.count), 0)",
    ).await;
    assert_eq!(bars, net["summary"]["messages"]);
    b.screenshot("3-domain-example-net").await;

    // TLS view of the table, and the TLS chart.
    b.click(&b.find("#view-tls").await).await;
    b.wait_text("#details thead", |t| {
        t.contains("TLSv1.3") && t.contains("none")
    })
    .await;
    b.click(&b.find("#chart-tls").await).await;
    b.wait_text("#chart-tls.active", |t| t.contains("TLS usage"))
        .await;
    let tls_rects = b
        .script("return document.querySelectorAll('#chart rect[data-tls]').length")
        .await;
    assert!(tls_rects.as_u64().unwrap() > 0);
    b.screenshot("4-tls-view").await;

    // A row's details.
    let first = b.find("#details .sender-link").await;
    let name = b.text(&first).await;
    b.click(&first).await;
    let shown = b.wait_text("#sender-name", |t| !t.is_empty()).await;
    assert_eq!(shown, name);
    b.screenshot("5-sender").await;

    // The XSS sender's own page shows the name as text.
    b.goto(&format!(
        "{base}/senders/{}",
        smtp_auth_insight::report::links::encode(XSS)
    ))
    .await;
    assert_eq!(b.wait_text("#sender-name", |t| !t.is_empty()).await, XSS);
    assert_eq!(
        b.script("return document.querySelectorAll('img').length")
            .await,
        0
    );
    assert!(!b.dialog_open().await);

    // Request report: refused recipient, then one that reaches the relay.
    b.goto(&base).await;
    b.type_into(&b.find("#recipients").await, "someone@elsewhere.example")
        .await;
    b.click(&b.find("#request").await).await;
    let refusal = b.wait_text("#message-text", |t| !t.is_empty()).await;
    assert!(refusal.contains("someone@elsewhere.example"), "{refusal}");
    b.goto(&base).await;
    b.type_into(&b.find("#recipients").await, "admin@example.com")
        .await;
    b.click(&b.find("#request").await).await;
    b.wait_text("#message-title", |t| t.contains("sent")).await;
    assert_eq!(smtp.messages().len(), 1);
    b.screenshot("6-request-sent").await;

    // On a phone nothing runs off the side of the page (the table scrolls
    // in its own box).
    b.resize(390, 844).await;
    b.goto(&base).await;
    b.find("#tile-senders").await;
    let overflow = b
        .script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        )
        .await;
    assert_eq!(overflow, 0, "horizontal overflow on a phone");
    b.screenshot("7-phone").await;
    b.resize(1280, 1100).await;

    // Logging out ends the session.
    b.goto(&base).await;
    b.click(&b.find(".logout button").await).await;
    // The logout answer leads to the login form: wait for it before
    // navigating, or the navigation may cancel the logout request.
    b.wait_text("#login", |_| true).await;
    b.goto(&base).await;
    assert!(b.url().await.ends_with("/login"));
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn configured_users_log_in_with_their_password() {
    let hash = password_hash("s3cret pass");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let bad = Site::new("[[server.users]]\nname = \"ann\"\npassword_hash = \"plaintext\"\n");
    let out = bad.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("key `server.users.password_hash`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let site = Site::new(&format!(
        "server.public_url = \"https://insight.example.com\"\n\
         [[server.users]]\nname = \"ann\"\npassword_hash = \"{hash}\"\n"
    ));
    let d = site.start();
    let no_redirects = no_redirects();
    assert_eq!(login(&d, "ann", "wrong").await.status(), 401);
    assert_eq!(login(&d, "bob", "s3cret pass").await.status(), 401);
    let ok = login(&d, "ann", "s3cret pass").await;
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(cookie.contains("; Secure"), "HTTPS public URL: {cookie}");
    let page = no_redirects
        .get(d.url("/"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    // The table as CSV, with the session.
    let csv = no_redirects
        .get(d.url("/senders.csv"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert!(
        csv.text()
            .await
            .unwrap()
            .starts_with("sender,domain,messages")
    );
    // The token still works without a user name.
    assert_eq!(login(&d, "", TOKEN).await.status(), 303);
}
