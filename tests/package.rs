//! The Debian package: the man page and shell completions are generated
//! from the command line's definition (and kept in assets/, checked here
//! to be current), and `cargo deb` packs every file an installed server
//! needs, the configuration as a conffile.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The generated files: path below assets/, content.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    use clap_complete::Shell;
    let mut out = Vec::new();
    // A page for the command and one per subcommand
    // (smtp-auth-insight-report(1), ...), as clap_mangen names them.
    let command = smtp_auth_insight::cli::command();
    let mut pages = vec![("smtp-auth-insight".to_owned(), command.clone())];
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("smtp-auth-insight-{}", sub.get_name());
        // Command names are static strings; a test may leak a few.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(static_name)));
    }
    for (name, page) in pages {
        let mut man = Vec::new();
        clap_mangen::Man::new(page).render(&mut man).unwrap();
        out.push((PathBuf::from(format!("man/{name}.1")), man));
    }
    for (shell, name) in [
        (Shell::Bash, "smtp-auth-insight.bash"),
        (Shell::Zsh, "_smtp-auth-insight"),
        (Shell::Fish, "smtp-auth-insight.fish"),
    ] {
        let mut script = Vec::new();
        let mut command = smtp_auth_insight::cli::command();
        clap_complete::generate(shell, &mut command, "smtp-auth-insight", &mut script);
        if shell == Shell::Bash {
            // clap_complete 4.6 names a subcommand's case label with the
            // program's own hyphens escaped as subcommand separators, not
            // as the `cmd=` it compares with: no option of a subcommand
            // was ever offered. The labels are made to match.
            let text = String::from_utf8_lossy(&script).replace(
                "smtp__subcmd__auth__subcmd__insight__subcmd__",
                "smtp__auth__insight__subcmd__",
            );
            script = text.into_bytes();
        }
        out.push((Path::new("completions").join(name), script));
    }
    out
}

#[test]
fn man_page_and_completions_are_those_of_the_command_line() {
    let regenerate = std::env::var_os("SMTP_AUTH_INSIGHT_REGENERATE").is_some();
    for (path, content) in generated() {
        let file = root().join("assets").join(&path);
        if regenerate {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &content).unwrap();
        }
        let kept = std::fs::read(&file).unwrap_or_default();
        assert!(
            kept == content,
            "assets/{} is not what the command line generates; \
             SMTP_AUTH_INSIGHT_REGENERATE=1 cargo test --test package writes it",
            path.display()
        );
    }
    // A page for every command, with its options.
    let pages: Vec<String> = generated()
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    for command in [
        "run",
        "import",
        "report",
        "alerts",
        "backtest",
        "check-config",
        "hash-password",
        "holds",
        "release",
    ] {
        let page = format!("man/smtp-auth-insight-{command}.1");
        assert!(pages.contains(&page), "{page} missing: {pages:?}");
    }
    let report = generated()
        .into_iter()
        .find(|(p, _)| p.ends_with("smtp-auth-insight-report.1"))
        .unwrap();
    assert!(String::from_utf8_lossy(&report.1).contains("\\-\\-format"));
}

/// `cargo deb` around the binary the tests built (a release build takes
/// minutes; the layout of the package is what is checked here).
fn build_package(out: &Path) -> PathBuf {
    let target = out.join("target");
    std::fs::create_dir_all(target.join("release")).unwrap();
    std::fs::copy(BIN, target.join("release/smtp-auth-insight")).unwrap();
    let deb = out.join("smtp-auth-insight.deb");
    succeed(
        Command::new("cargo")
            .args(["deb", "--no-build", "--no-strip", "--fast", "--output"])
            .arg(&deb)
            .current_dir(root())
            .env("CARGO_TARGET_DIR", &target),
        "cargo deb (cargo install cargo-deb; tests/support/install-deps.sh does)",
    );
    deb
}

const DPKG_DEB: &str = "dpkg-deb (Debian package dpkg)";

/// `dpkg-deb ARGS PATH`, its standard output.
fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = succeed(Command::new("dpkg-deb").args(args).arg(deb), DPKG_DEB);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cargo_deb_packs_what_an_installed_server_needs() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build_package(dir.path());
    let listing = dpkg_deb(&["--contents"], &deb);
    let mode_of = |path: &str| -> String {
        let line = listing
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")) || l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"));
        line.split_whitespace().next().unwrap().to_owned()
    };
    assert_eq!(mode_of("usr/bin/smtp-auth-insight"), "-rwxr-xr-x");
    for file in [
        "etc/smtp-auth-insight/config.toml",
        "usr/share/man/man1/smtp-auth-insight.1.gz",
        "usr/share/man/man1/smtp-auth-insight-report.1.gz",
        "usr/share/man/man1/smtp-auth-insight-alerts.1.gz",
        "usr/share/bash-completion/completions/smtp-auth-insight",
        "usr/share/zsh/vendor-completions/_smtp-auth-insight",
        "usr/share/fish/vendor_completions.d/smtp-auth-insight.fish",
        "usr/share/doc/smtp-auth-insight/README.md",
        "usr/share/doc/smtp-auth-insight/copyright",
        "usr/share/doc/smtp-auth-insight/examples/config.example.toml",
        "usr/share/doc/smtp-auth-insight/examples/monitoring/prometheus-rules.yml",
        "usr/share/doc/smtp-auth-insight/examples/monitoring/grafana-dashboard.json",
    ] {
        assert_eq!(mode_of(file), "-rw-r--r--", "{file}");
    }
    let unit = listing
        .lines()
        .find(|l| l.ends_with("systemd/system/smtp-auth-insight.service"))
        .unwrap_or_else(|| panic!("no unit in the package:\n{listing}"));
    assert!(unit.starts_with("-rw-r--r--"), "{unit}");

    let control = dpkg_deb(&["--field"], &deb);
    for field in ["Package: smtp-auth-insight", "Section: mail", "Depends:"] {
        assert!(control.contains(field), "{field} in\n{control}");
    }
    assert!(control.contains("systemd"), "{control}");

    // The configuration is a conffile; postinst makes the credentials
    // directory and enables the service.
    let info = dir.path().join("control");
    dpkg_deb(&["--control", &deb.to_string_lossy()], &info);
    let conffiles = std::fs::read_to_string(info.join("conffiles")).unwrap();
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/smtp-auth-insight/config.toml"),
        "{conffiles}"
    );
    let postinst = std::fs::read_to_string(info.join("postinst")).unwrap();
    assert!(
        postinst.contains("install -d -m 0700 -o root -g root /etc/smtp-auth-insight/credentials")
    );
    assert!(postinst.contains("smtp-auth-insight.service"), "{postinst}");

    // What is packed works: the configuration passes check-config and keeps
    // the data in the unit's state directory; the unit starts the packed
    // binary with it.
    let files = dir.path().join("files");
    dpkg_deb(&["--extract", &deb.to_string_lossy()], &files);
    let config = files.join("etc/smtp-auth-insight/config.toml");
    let out = succeed(
        Command::new(files.join("usr/bin/smtp-auth-insight"))
            .arg("--config")
            .arg(&config)
            .arg("check-config"),
        "the packed binary",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("data in /var/lib/smtp-auth-insight"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let unit = walk(&files)
        .into_iter()
        .find(|p| p.ends_with("smtp-auth-insight.service"))
        .unwrap();
    let unit = std::fs::read_to_string(unit).unwrap();
    assert!(unit.contains(
        "ExecStart=/usr/bin/smtp-auth-insight --config /etc/smtp-auth-insight/config.toml run"
    ));
    assert!(unit.contains("StateDirectory=smtp-auth-insight"));
    assert!(unit.contains("Documentation=file:///usr/share/doc/smtp-auth-insight/README.md"));
    let copyright =
        std::fs::read_to_string(files.join("usr/share/doc/smtp-auth-insight/copyright")).unwrap();
    assert!(copyright.contains("MIT OR Apache-2.0"), "{copyright}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The bash completion, sourced in a real bash: a subcommand's options
/// are offered, and the subcommands themselves.
#[test]
fn bash_completes_subcommands_and_their_options() {
    let script = root().join("assets/completions/smtp-auth-insight.bash");
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let probe = format!(
            "source {script:?}\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE={line:?}\n\
             COMP_POINT=${{#COMP_LINE}}\n_smtp__auth__insight smtp-auth-insight \"{last}\" \"{prev}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words = words
                .iter()
                .map(|w| format!("{w:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            cword = words.len() - 1,
            last = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(probe)
            .output()
            .expect("bash");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = complete("smtp-auth-insight report --f");
    assert!(report.lines().any(|l| l == "--format"), "{report}");
    let release = complete("smtp-auth-insight release --re");
    assert!(release.lines().any(|l| l == "--requeue"), "{release}");
    let subcommands = complete("smtp-auth-insight rel");
    assert!(subcommands.lines().any(|l| l == "release"), "{subcommands}");
}
