//! The log shippers' examples in docs/monitoring (Vector and Fluent Bit on
//! mail servers that do not run smtp-auth-insight) against the real logs
//! Exim and Postfix wrote: they find every submission and failed login
//! smtp-auth-insight's own parsers find, with the same ids, so the daemon
//! counts a message shipped and also imported once.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn monitoring() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(monitoring().join(name)).expect(name)
}

/// Runs the shipping examples' regular expressions (Vector's and Fluent
/// Bit's, the latter's named groups in Python's spelling) over the real
/// Exim log, in Python: `{"vector"|"fluent-bit": [{sender, tls, ...}]}`.
fn example_matches() -> Value {
    let vector = read("vector-exim.toml");
    let regexes: Vec<&str> = vector
        .split("r'")
        .skip(1)
        .filter_map(|r| r.split("')").next())
        .collect();
    assert_eq!(regexes.len(), 3, "{regexes:?}");
    let parsers = read("fluent-bit-exim-parsers.conf");
    let fluent = parsers
        .lines()
        .find_map(|l| l.trim().strip_prefix("Regex"))
        .expect("the parser's Regex")
        .trim()
        .replace("(?<", "(?P<");
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mta/exim-mainlog.log"
    );
    let script = r#"
import json, re, sys
line_re, auth_re, tls_re, fluent_re, log = sys.argv[1:]
out = {"vector": [], "fluent-bit": []}
for line in open(log, encoding="utf-8"):
    line = line.rstrip("\n")
    m, a = re.search(line_re, line), re.search(auth_re, line)
    if m and a:
        t = re.search(tls_re, line)
        out["vector"].append({"sender": a["user"], "tls": t["version"] if t else "none",
                              "msgid": m["msgid"], "client_ip": m["ip"], "from": m["from"]})
    f = re.search(fluent_re, line)
    if f:
        out["fluent-bit"].append({"sender": f["sender"], "tls": f["tls"] or "none",
                                  "msgid": f["msgid"], "client_ip": f["client_ip"],
                                  "from": f["envelope_from"]})
print(json.dumps(out))
"#;
    let out = succeed(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(&regexes)
            .arg(&fluent)
            .arg(log),
        "python3",
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn shipping_examples_find_every_submission_of_the_real_exim_log() {
    let expected: Value = serde_json::from_str(include_str!("fixtures/mta/expected.json")).unwrap();
    let matches = example_matches();
    for example in ["vector", "fluent-bit"] {
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for m in matches[example].as_array().unwrap() {
            // The TLS spellings Exim writes are ones the API accepts.
            let tls = m["tls"].as_str().unwrap().replace("TLS1.", "TLSv1.");
            let tls = if tls == "TLSv1" {
                "TLSv1.0".to_owned()
            } else {
                tls
            };
            *counts
                .entry(m["sender"].as_str().unwrap().to_owned())
                .or_default()
                .entry(tls)
                .or_default() += 1;
            assert_eq!(m["client_ip"], "127.0.0.1", "{m}");
        }
        let counts = serde_json::to_value(&counts).unwrap();
        assert_eq!(counts, expected["messages"], "{example}");
    }
    // The same message ids: events shipped by either and imported by
    // smtp-auth-insight get the same id, HOST:MESSAGE-ID.
    let ids = |example: &str| -> Vec<String> {
        matches[example]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["msgid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids("vector"), ids("fluent-bit"));
}

#[test]
fn the_fluent_bit_script_builds_events_the_api_accepts() {
    let record = "{stamp = '2026-11-27 02:50:58', msgid = '1xWm38-0006oH-1l', \
                  sender = 'alice@example.com', tls = 'TLS1.3', client_ip = '127.0.0.1', \
                  envelope_from = 'newsletter@example.com'}";
    let program = format!(
        "dofile('exim-submissions.lua')\n\
         local _, _, ev = to_event('exim', 0, {record})\n\
         print(string.format('{{\"ts\":%q,\"sender\":%q,\"tls\":%q,\"client_ip\":%q,\"id\":%q,\"envelope_from\":%q}}', \
           ev.ts, ev.sender, ev.tls, ev.client_ip, ev.id, ev.envelope_from))"
    );
    let out = succeed(
        Command::new("lua5.4")
            .arg("-e")
            .arg(program)
            .current_dir(monitoring())
            .env("TZ", "Europe/Berlin"),
        "lua5.4 (tests/support/install-deps.sh installs it)",
    );
    let event: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["ts"], "2026-11-27T02:50:58+01:00");
    assert!(event["id"].as_str().unwrap().ends_with(":1xWm38-0006oH-1l"));
    // The daemon takes it as it is.
    let body = event.to_string();
    let parsed = smtp_auth_insight::event::parse_body(body.as_bytes(), chrono::Utc::now())
        .expect("an event the API accepts");
    assert_eq!(parsed[0].sender, "alice@example.com");
    assert_eq!(parsed[0].tls, smtp_auth_insight::event::Tls::V1_3);
    assert_eq!(parsed[0].ts.to_rfc3339(), "2026-11-27T01:50:58+00:00");
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mta");

/// A string as a Lua literal (Lua 5.3+ reads Rust's `\u{..}` escapes).
fn lua_string(s: &str) -> String {
    format!("{s:?}")
}

/// The records a shipper hands postfix-submissions.lua for `log`: its
/// lines (a tailed file), or, with `journal`, the journal entries of its
/// RFC 3339 lines (identifier, pid, host, message, time).
fn records(log: &str, journal: bool) -> String {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{log}")).unwrap();
    let mut out = String::from("return {\n");
    for line in text.lines() {
        if !journal {
            out.push_str(&format!("{{line = {}}},\n", lua_string(line)));
            continue;
        }
        let (at, host, ident, pid, message) = rsyslog_fields(line);
        out.push_str(&format!(
            "{{ident = {}, pid = {}, host = {}, msg = {}, ts = {}, seconds = {}}},\n",
            lua_string(ident),
            lua_string(pid),
            lua_string(host),
            lua_string(message),
            lua_string(&at.to_rfc3339()),
            at.timestamp_micros() as f64 / 1e6,
        ));
    }
    out.push_str("}\n");
    out
}

/// Runs postfix-submissions.lua as `shipper` ("fluent-bit" or "vector")
/// calls it, on the records of `log`: the events it emits.
fn shipped(shipper: &str, log: &str, journal: bool) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let records_file = dir.path().join("records.lua");
    std::fs::write(&records_file, records(log, journal)).unwrap();
    // Fluent Bit's systemd input keeps the journal's field names and gives
    // the time as a number; Vector's journald source renames MESSAGE and
    // _HOSTNAME to message and host, and its remap puts the time in ts.
    let driver = r#"
local shipper, script, records = ...
dofile(script)
local function json(t)
  local parts = {}
  for k, v in pairs(t) do
    local s = tostring(v):gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end)
    parts[#parts + 1] = string.format('"%s":"%s"', k, s)
  end
  print("{" .. table.concat(parts, ",") .. "}")
end
for _, r in ipairs(dofile(records)) do
  if shipper == "fluent-bit" then
    local record = r.line and {log = r.line} or
      {SYSLOG_IDENTIFIER = r.ident, SYSLOG_PID = r.pid, _PID = r.pid, _HOSTNAME = r.host, MESSAGE = r.msg}
    local code, _, event = to_event("postfix", r.seconds or 0, record)
    if code == 1 then json(event) end
  else
    local log = r.line and {message = r.line} or
      {SYSLOG_IDENTIFIER = r.ident, SYSLOG_PID = r.pid, _PID = r.pid, host = r.host, message = r.msg, ts = r.ts}
    process({log = log}, function(event) json(event.log) end)
  end
end
"#;
    let driver_file = dir.path().join("driver.lua");
    std::fs::write(&driver_file, driver).unwrap();
    let out = succeed(
        Command::new("lua5.4")
            .arg(&driver_file)
            .arg(shipper)
            .arg(monitoring().join("postfix-submissions.lua"))
            .arg(&records_file),
        "lua5.4 (tests/support/install-deps.sh installs it)",
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Per sender, TLS version → messages; and per sender, failed logins.
type Counts = (
    BTreeMap<String, BTreeMap<String, u64>>,
    BTreeMap<String, u64>,
);

fn counts(events: &[Value]) -> Counts {
    let (mut messages, mut failures) = Counts::default();
    for e in events {
        let sender = e["sender"].as_str().unwrap().to_owned();
        match e["result"].as_str().unwrap() {
            "accepted" => {
                *messages
                    .entry(sender)
                    .or_default()
                    .entry(e["tls"].as_str().unwrap().to_owned())
                    .or_default() += 1
            }
            _ => *failures.entry(sender).or_default() += 1,
        }
    }
    (messages, failures)
}

/// The number of events `import` says it read from a log.
fn imported_events(out: &std::process::Output) -> u64 {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("read "))
        .unwrap_or_else(|| panic!("no summary in {text}"));
    line.split(": ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

/// postfix-submissions.lua, as Fluent Bit and Vector call it, on the
/// logs a real Postfix wrote (rsyslog's RFC 3339 and traditional format,
/// and the journal's entries of the former): it finds what the fixtures
/// sent (expected.json), nothing for messages rejected at the end of DATA,
/// and the daemon, having imported the same log with its own parser, finds
/// every shipped event already stored under the same id.
#[tokio::test(flavor = "multi_thread")]
async fn the_postfix_shipper_finds_what_the_daemon_finds_with_the_same_ids() {
    let expected: Value = serde_json::from_str(include_str!("fixtures/mta/expected.json")).unwrap();
    for log in [
        "postfix-rsyslog.log",
        "postfix-maillog-file.log",
        "postfix-end-of-data-reject.log",
    ] {
        let site = Site::new("store.retention_days = 3650\n");
        let d = site.start();
        let out = site.cli(&[
            "import",
            "--format",
            "postfix",
            &format!("{FIXTURES}/{log}"),
        ]);
        let imported = imported_events(&out);
        assert!(imported > 0, "{log}");
        let mut kinds = vec![("fluent-bit", false), ("vector", false)];
        if log == "postfix-rsyslog.log" {
            kinds.extend([("fluent-bit", true), ("vector", true)]);
        }
        for (shipper, journal) in kinds {
            let events = shipped(shipper, log, journal);
            let what = format!("{shipper} on {log} (journal: {journal})");
            assert_eq!(events.len() as u64, imported, "{what}: {events:?}");
            if log != "postfix-end-of-data-reject.log" {
                let (messages, failures) = counts(&events);
                assert_eq!(
                    serde_json::to_value(&messages).unwrap(),
                    expected["messages"],
                    "{what}"
                );
                assert_eq!(
                    serde_json::to_value(&failures).unwrap(),
                    expected["auth_failures"],
                    "{what}"
                );
            }
            let (status, body) = post_events(&d, Value::Array(events.clone()).to_string()).await;
            assert_eq!(status, 202, "{what}: {body}");
            assert_eq!(body["accepted"], 0, "{what}: {body}");
            assert_eq!(body["duplicates"], events.len(), "{what}: {body}");
        }
        d.stop();
    }
}
