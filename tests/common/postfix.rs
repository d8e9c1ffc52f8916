//! A private instance of Debian's Postfix for the tests: its own config,
//! queue and log in a temporary directory, a submission service on a
//! UNIX socket (no port to pick) running chrooted as Debian's does,
//! STARTTLS required, SASL through Cyrus sasldb, and everything it accepts
//! discarded. Root only (Postfix's
//! master runs as root and drops to the `postfix` user); the package,
//! swaks and sasl2-bin come from tests/support/install-deps.sh.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Postfix {
    dir: tempfile::TempDir,
    log: PathBuf,
}

/// Runs `cmd`, which must succeed.
fn run(cmd: &mut Command) -> Output {
    super::succeed(
        cmd,
        "tests/support/install-deps.sh installs postfix, swaks and sasl2-bin",
    )
}

/// A private instance's directory before it starts: its queue holds the
/// policy service's socket directory, `smtp-auth-insight` (group
/// postfix, mode 0750), where README puts it on Debian.
pub struct Spool(tempfile::TempDir);

impl Spool {
    pub fn new() -> Spool {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for sub in ["conf/sasl", "queue/etc", "queue/smtp-auth-insight", "data"] {
            std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        }
        // Postfix's processes run as `postfix` and must reach these.
        run(Command::new("chmod").args(["755"]).arg(d));
        run(Command::new("chown").arg("postfix").arg(d.join("data")));
        let policy = d.join("queue/smtp-auth-insight");
        run(Command::new("chown").arg("root:postfix").arg(&policy));
        run(Command::new("chmod").arg("750").arg(&policy));
        Spool(dir)
    }

    /// Where the policy service listens: `unix:smtp-auth-insight/policy`
    /// for a chrooted smtpd.
    pub fn policy_socket(&self) -> PathBuf {
        self.0.path().join("queue/smtp-auth-insight/policy")
    }

    /// Starts an instance whose `main.cf` ends with `main_cf_extra` (the
    /// README's policy lines, say), logging to `log`; `users` are
    /// (login, password). Its submission service runs chrooted in the
    /// queue directory, as Debian's smtpd does.
    pub fn start(self, main_cf_extra: &str, users: &[(&str, &str)], log: &Path) -> Postfix {
        let dir = self.0;
        let d = dir.path();
        let (cert, key) = super::self_signed(d);
        run(Command::new("chmod").arg("644").arg(&key));
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {q}\n\
             data_directory = {data}\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             myhostname = vm\n\
             inet_interfaces = loopback-only\n\
             inet_protocols = ipv4\n\
             mydestination =\n\
             relay_domains =\n\
             alias_maps =\n\
             alias_database =\n\
             default_transport = discard\n\
             local_transport = discard\n\
             maillog_file_prefixes = {log_dir}\n\
             maillog_file = {log}\n\
             smtpd_tls_cert_file = {cert}\n\
             smtpd_tls_key_file = {key}\n\
             smtpd_tls_security_level = encrypt\n\
             smtpd_tls_loglevel = 1\n\
             smtpd_sasl_auth_enable = yes\n\
             smtpd_sasl_type = cyrus\n\
             smtpd_sasl_path = smtpd\n\
             smtpd_recipient_restrictions = permit_sasl_authenticated, reject\n\
             smtpd_relay_restrictions = permit_sasl_authenticated, reject\n\
             {main_cf_extra}\n",
            q = path(d, "queue"),
            data = path(d, "data"),
            log = log.display(),
            log_dir = log.parent().unwrap_or(d).display(),
        );
        std::fs::write(d.join("conf/main.cf"), main_cf).expect("main.cf");
        std::fs::write(d.join("conf/master.cf"), MASTER_CF).expect("master.cf");
        // Debian's Postfix reads `$config_directory/sasl/smtpd.conf`; the
        // chrooted smtpd finds sasldb2 inside its chroot, as Debian's
        // README.Debian has it.
        std::fs::write(
            d.join("conf/sasl/smtpd.conf"),
            "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: /etc/sasldb2\nmech_list: PLAIN LOGIN\n",
        )
        .expect("smtpd.conf");
        let db = path(d, "queue/etc/sasldb2");
        for (user, password) in users {
            let (login, realm) = user.split_once('@').expect("user@realm");
            let mut cmd = Command::new("saslpasswd2");
            cmd.args(["-p", "-c", "-f", &db, "-u", realm, login]);
            let out = super::run_with_stdin(&mut cmd, password.as_bytes());
            assert!(out.status.success(), "saslpasswd2: {out:?}");
        }
        run(Command::new("chown").arg("postfix").arg(&db));
        let pf = Postfix {
            dir,
            log: log.to_owned(),
        };
        run(Command::new("postfix")
            .arg("-c")
            .arg(pf.conf())
            .arg("start"));
        // The master creates the service's socket once it runs.
        let socket = pf.socket();
        super::wait_until_blocking("Postfix starts", std::time::Duration::from_secs(30), || {
            super::ready(socket.exists(), ())
        });
        pf
    }
}

impl Postfix {
    /// [`Spool::start`] in a spool of its own.
    pub fn start(main_cf_extra: &str, users: &[(&str, &str)], log: &Path) -> Postfix {
        Spool::new().start(main_cf_extra, users, log)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("queue/public/submission")
    }

    /// Its configuration directory (`MAIL_CONFIG` for its commands).
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    /// The log Postfix writes (`maillog_file`).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Submits one message as `user` with AUTH PLAIN over STARTTLS; the
    /// SMTP server's last answer to DATA (`250 2.0.0 Ok: queued as ...`).
    pub fn submit(&self, user: &str, password: &str) -> String {
        let out = Command::new("swaks")
            .arg("--socket")
            .arg(self.socket())
            .args(["--tls", "--auth", "PLAIN", "--auth-user", user])
            .args(["--auth-password", password, "--from", user])
            .args([
                "--to",
                "bob@example.net",
                "--helo",
                "laptop",
                "--timeout",
                "20",
            ])
            .output()
            .expect("swaks (tests/support/install-deps.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let answer = text
            .lines()
            .filter(|l| l.starts_with("<~") || l.starts_with("<**"))
            .map(|l| l.trim_start_matches(['<', '~', '*', ' ']).to_owned())
            .rfind(|l| !l.starts_with("221"))
            .unwrap_or_default();
        assert!(!answer.is_empty(), "no answer from Postfix:\n{text}");
        answer
    }

    /// The messages in Postfix's queues (`postqueue -j`), one JSON object
    /// each (`queue_name`, `queue_id`, `sender`, ...).
    pub fn queue(&self) -> Vec<serde_json::Value> {
        let out = run(Command::new("postqueue")
            .arg("-c")
            .arg(self.conf())
            .arg("-j"));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("postqueue -j output"))
            .collect()
    }

    /// The queue ids of messages Postfix accepted, from its answers.
    pub fn queue_id(answer: &str) -> Option<&str> {
        answer.split("queued as ").nth(1).map(str::trim)
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.conf())
            .arg("stop")
            .output();
    }
}

fn path(d: &Path, name: &str) -> String {
    d.join(name).display().to_string()
}

/// The services a submission-only instance needs; the submission service
/// listens on `queue/public/submission`.
const MASTER_CF: &str = "\
submission unix n - y - - smtpd
  -o syslog_name=postfix/submission
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";
