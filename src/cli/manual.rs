//! The written parts of the manual: an example for every command, and the
//! sections of `smtp-auth-insight(1)` that options cannot say (files,
//! environment, exit status, the Postfix setup). They live next to the
//! command line's definition so that `--help` and the man pages (generated
//! from both by the package's tests) say the same thing.

/// One example: what it does, and the command line.
pub struct Example {
    pub what: &'static str,
    pub command: &'static str,
}

/// An `Example` in a constant list (a function call would not be one).
macro_rules! ex {
    ($what:expr, $command:expr $(,)?) => {
        Example {
            what: $what,
            command: $command,
        }
    };
}

/// The examples of a command (`""` is the program itself).
pub fn examples(command: &str) -> &'static [Example] {
    match command {
        "" => &[
            ex!(
                "Try it on built-in defaults (data in ./data, mail as .eml files in ./data/mail), whatever is installed:",
                "smtp-auth-insight --config /dev/null run",
            ),
            ex!(
                "Check the installed configuration, then reload the service:",
                "smtp-auth-insight check-config && systemctl reload smtp-auth-insight",
            ),
            ex!(
                "Last week's report as text:",
                "smtp-auth-insight report --start 2026-11-30 --end 2026-12-06",
            ),
            ex!(
                "Load last month's rotated Postfix logs:",
                "smtp-auth-insight import --format postfix /var/log/mail.log.1 /var/log/mail.log.*.gz",
            ),
            ex!(
                "Which accounts are contained, and release one:",
                "smtp-auth-insight holds && smtp-auth-insight release --requeue alice@example.com",
            ),
        ],
        "run" => &[
            ex!(
                "Run with a configuration of your own (the packaged service runs the installed one):",
                "smtp-auth-insight --config ./config.toml run",
            ),
            ex!(
                "More detail in the log:",
                "RUST_LOG=smtp_auth_insight=debug smtp-auth-insight run",
            ),
        ],
        "import" => &[
            ex!(
                "Rotated Postfix logs, compressed ones included:",
                "smtp-auth-insight import --format postfix /var/log/mail.log.1 /var/log/mail.log.*.gz",
            ),
            ex!(
                "Postfix lines from the journal:",
                "journalctl -o short-iso -t postfix/submission/smtpd -t postfix/smtpd | smtp-auth-insight import --format postfix -",
            ),
            ex!(
                "Exim's main log of another host, labelled with its name:",
                "smtp-auth-insight import --format exim --host mx2 mx2-mainlog",
            ),
        ],
        "report" => &[
            ex!(
                "Last week's report as text:",
                "smtp-auth-insight report --start 2026-11-30 --end 2026-12-06",
            ),
            ex!(
                "One domain's senders as CSV:",
                "smtp-auth-insight report --domain example.com --format csv --out senders.csv",
            ),
            ex!(
                "Mail the default range's report and wait until it is sent:",
                "smtp-auth-insight report --send --wait --to it@example.com",
            ),
        ],
        "alerts" => &[
            ex!(
                "Alerts since Monday, as JSON lines:",
                "smtp-auth-insight alerts --since 2026-11-30T00:00:00Z --format json",
            ),
            ex!("The 20 newest:", "smtp-auth-insight alerts --limit 20"),
        ],
        "backtest" => &[
            ex!(
                "Which alerts last month's log would have raised, learning from its first week:",
                "smtp-auth-insight backtest --format postfix --learn-days 7 /var/log/mail.log.1",
            ),
            ex!(
                "Every alert, also those a live daemon would not mail:",
                "smtp-auth-insight backtest --format exim --all /var/log/exim4/mainlog",
            ),
        ],
        "holds" => &[
            ex!("The accounts contained now:", "smtp-auth-insight holds",),
            ex!(
                "Every containment on record, released ones too, as JSON:",
                "smtp-auth-insight holds --all --format json",
            ),
        ],
        "release" => &[
            ex!(
                "Let an account send again and deliver the mail Postfix held for it:",
                "smtp-auth-insight release --requeue alice@example.com",
            ),
            ex!(
                "Release it and delete what was held (spam):",
                "smtp-auth-insight release --delete-held alice@example.com",
            ),
        ],
        "check-config" => &[ex!(
            "Check a file before installing it:",
            "smtp-auth-insight --config ./config.toml check-config",
        )],
        "hash-password" => &[ex!(
            "A dashboard login for [[server.users]]:",
            "printf '%s' 'correct horse' | smtp-auth-insight hash-password",
        )],
        _ => &[],
    }
}

/// The `--help` text after a command's options: its examples.
pub(super) fn after_help(command: &str) -> String {
    let mut text = String::from("Examples:");
    for e in examples(command) {
        text.push_str(&format!("\n  {}\n    $ {}", e.what, e.command));
    }
    text
}

/// Sections of `smtp-auth-insight(1)` after the options and commands:
/// (title, paragraphs). A paragraph whose lines start with two spaces is
/// printed as it is (commands, file excerpts).
pub fn sections() -> &'static [(&'static str, &'static [&'static str])] {
    &[
        (
            "CONFIGURATION",
            &[
                "Every command reads the file named by --config or $SMTP_AUTH_INSIGHT_CONFIG; \
                 without either, /etc/smtp-auth-insight/config.toml when it exists; else it runs \
                 on built-in defaults. An empty file (--config /dev/null) is the built-in defaults \
                 too, whatever is installed. The first line of its standard error names the file \
                 it read, or says \"built-in defaults\". Every key is described in \
                 smtp-auth-insight.conf(5).",
                "While the daemon runs it holds the store: import, report, alerts, holds and \
                 release then go through its HTTP API, with the API token of the same configuration.",
            ],
        ),
        (
            "POSTFIX SETUP",
            &[
                "Submissions are counted from Postfix's log (a [[sources]] table of kind \"postfix\" \
                 or \"journald\"), and, to contain compromised accounts, from the policy service \
                 Postfix asks at the end of DATA. In main.cf:",
                "  smtpd_end_of_data_restrictions =\n    check_policy_service { unix:smtp-auth-insight/policy, timeout=2s, default_action=DUNNO }\n  smtpd_policy_service_default_action = DUNNO",
                "and in the configuration [policy] listen = \"unix:/var/spool/postfix/smtp-auth-insight/policy\" \
                 with socket_group = \"postfix\". default_action=DUNNO lets mail through when the \
                 daemon is down. action = \"monitor\" (the default) only counts what would be held.",
            ],
        ),
        (
            "FILES",
            &[
                "/etc/smtp-auth-insight/config.toml\n\
                 The packaged service's configuration.",
                "/etc/smtp-auth-insight/credentials/\n\
                 Root-only secrets systemd hands to the service alone: api-token (the API token, \
                 instead of a generated one), smtp-password (the relay's), dashboard-users \
                 (NAME:HASH lines).",
                "/var/lib/smtp-auth-insight/\n\
                 The packaged service's store and mail queue; api-token, the API token generated \
                 at first start when none is configured (log shippers on other servers need it); \
                 mail/ with .eml files while no relay is configured.",
                "/usr/share/doc/smtp-auth-insight/examples/\n\
                 config.example.toml with every key; monitoring/ with Prometheus rules, a Grafana \
                 dashboard and log shippers (Vector, Fluent Bit) for remote mail servers.",
            ],
        ),
        (
            "ENVIRONMENT",
            &[
                "SMTP_AUTH_INSIGHT_CONFIG\n\
                 The configuration file, when --config is not given.",
                "RUST_LOG\n\
                 The log filter (\"info\", \"smtp_auth_insight=debug\"); wins over [log] level.",
            ],
        ),
        (
            "EXIT STATUS",
            &[
                "0 on success; 1 on any error, which is one line on standard error naming what is \
                 wrong (a key and its file, a path, the daemon's answer); 2 for a command line \
                 that cannot be parsed.",
            ],
        ),
        (
            "SEE ALSO",
            &[
                "smtp-auth-insight.conf(5), smtp-auth-insight-run(1), smtp-auth-insight-import(1), \
                 smtp-auth-insight-report(1), smtp-auth-insight-alerts(1), \
                 smtp-auth-insight-backtest(1), smtp-auth-insight-holds(1), \
                 smtp-auth-insight-release(1), smtp-auth-insight-check-config(1), \
                 smtp-auth-insight-hash-password(1), postconf(5), systemd.exec(5), \
                 /usr/share/doc/smtp-auth-insight/README.md",
            ],
        ),
    ]
}
