//! The Debian package: the man page and shell completions are generated
//! from the command line's definition (and kept in assets/, checked here
//! to be current), and `cargo deb` packs every file an installed server
//! needs, the configuration as a conffile.

mod common;
#[path = "package/conf.rs"]
mod conf;
#[path = "package/man.rs"]
mod man;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The generated files: path below assets/, content.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    use clap_complete::Shell;
    let mut out: Vec<(PathBuf, Vec<u8>)> = man::pages()
        .into_iter()
        .map(|(name, page)| (Path::new("man").join(name), page.into_bytes()))
        .collect();
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
    // A page for every command, with its options and an example.
    let pages: Vec<(String, String)> = man::pages();
    let page = |name: &str| -> &str {
        pages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_str())
            .unwrap_or_else(|| panic!("no page {name}"))
    };
    for command in smtp_auth_insight::cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .filter(|n| n != "help")
    {
        let text = page(&format!("smtp-auth-insight-{command}.1"));
        for section in [".SH OPTIONS", ".SH EXAMPLES", ".SH \"SEE ALSO\""] {
            assert!(text.contains(section), "{command}: no {section}");
        }
    }
    assert!(page("smtp-auth-insight-report.1").contains("\\-\\-format"));
    let main = page("smtp-auth-insight.1");
    for section in [
        "DESCRIPTION",
        "COMMANDS",
        "EXAMPLES",
        "FILES",
        "\"SEE ALSO\"",
    ] {
        assert!(main.contains(&format!(".SH {section}")), "no {section}");
    }
    // Every page another names is shipped; no rustdoc link leaks.
    let mut checked = 0;
    for (name, text) in &pages {
        assert!(!text.contains("[`"), "{name} has a rustdoc link");
        for (i, _) in text.match_indices("smtp\\-auth\\-insight") {
            let rest = text[i..]
                .replace("\\-", "-")
                .replace("\\fR", "")
                .replace("\\fB", "");
            let Some(end) = rest.find(['(', ' ', ',', '\n', '\\']) else {
                continue;
            };
            if let Some(section) = rest[end..].strip_prefix('(') {
                checked += 1;
                let file = format!("{}.{}", &rest[..end], &section[..1]);
                assert!(
                    pages.iter().any(|(n, _)| *n == file),
                    "{name} refers to {file}, which is not shipped"
                );
            }
        }
    }
    assert!(checked > 20, "only {checked} references to pages found");
    // The configuration's page has every table and every key of the
    // example file it is made from.
    let conf = page("smtp-auth-insight.conf.5");
    let example = include_str!("../config.example.toml");
    for table in [
        "[server]",
        "[store]",
        "[report]",
        "[mail]",
        "[detect]",
        "[detect.volume]",
        "[policy]",
        "[[sources]]",
        "[[schedules]]",
    ] {
        let heading = |l: &str| l.len() > 4 && (l.starts_with(".SH ") || l.starts_with(".SS "));
        assert!(
            conf.lines().any(|l| heading(l) && &l[4..] == table),
            "no section {table}"
        );
    }
    let mut keys = 0;
    for line in conf::lines(example) {
        if let conf::Line::Key { name, .. } = line {
            let entry = format!("\\fB{name}\\fR");
            assert!(conf.contains(&entry), "{name} not in the page");
            keys += 1;
        }
    }
    assert!(keys > 80, "only {keys} keys found in config.example.toml");
    // man(1) renders each page without a warning.
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in &pages {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let out = succeed(
            Command::new("man")
                .args(["--warnings", "-l"])
                .arg(&file)
                .env("MANWIDTH", "80")
                .env("MAN_KEEP_FORMATTING", "0"),
            "man (Debian package man-db)",
        );
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(warnings.trim().is_empty(), "{name}: {warnings}");
        assert!(out.stdout.len() > 500, "{name} renders to almost nothing");
    }
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
            .args(["deb", "--no-build", "--fast", "--output"])
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
    assert_eq!(
        copyright,
        std::fs::read_to_string(root().join("debian/copyright")).unwrap()
    );

    // Debian's own checks: no lintian error; the binary without debug
    // information; the changelog; bash-completion recommended.
    let out = Command::new("lintian")
        .args(["--fail-on", "error", "--no-tag-display-limit"])
        .arg(&deb)
        .output()
        .expect("lintian (Debian package lintian)");
    let tags = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !tags.lines().any(|l| l.starts_with("E:")),
        "lintian:\n{tags}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sections = succeed(
        Command::new("readelf")
            .arg("--section-headers")
            .arg(files.join("usr/bin/smtp-auth-insight")),
        "readelf (Debian package binutils)",
    );
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert!(sections.contains(".text"), "{sections}");
    assert!(
        !sections.contains(".debug_info"),
        "not stripped:\n{sections}"
    );
    assert_eq!(
        mode_of("usr/share/doc/smtp-auth-insight/changelog.Debian.gz"),
        "-rw-r--r--"
    );
    assert!(control.contains("Recommends: bash-completion"), "{control}");
}

/// debian/copyright names every crate built into the binary, at the
/// version Cargo.lock pins, and the bundled font; every licence it names
/// has its text (or, for Apache-2.0, Debian's copy).
#[test]
fn the_copyright_file_covers_every_bundled_crate_and_the_font() {
    let copyright = std::fs::read_to_string(root().join("debian/copyright")).unwrap();
    let tree = succeed(
        Command::new("cargo")
            .args([
                "tree", "--edges", "normal", "--prefix", "none", "--format", "{p}",
            ])
            .args(["--package", "smtp-auth-insight"])
            .current_dir(root()),
        "cargo",
    );
    let mut crates = 0;
    for line in String::from_utf8_lossy(&tree.stdout).lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        if name.starts_with("smtp-auth-insight") {
            continue;
        }
        let version = version.trim_start_matches('v');
        let files = format!("Files: vendor/{name}-{version}/*");
        assert!(
            copyright.lines().any(|l| l == files),
            "{name} {version} is not in debian/copyright: run debian/update-copyright"
        );
        crates += 1;
    }
    assert!(crates > 100, "only {crates} crates in cargo tree");
    assert!(copyright.contains("Files: assets/fonts/DejaVuSans.ttf"));
    let standalone: Vec<&str> = copyright
        .split("\n\n")
        .filter(|p| !p.starts_with("Files:") && p.starts_with("License:"))
        .filter_map(|p| p.lines().next()?.strip_prefix("License: "))
        .collect();
    for paragraph in copyright.split("\n\n").filter(|p| p.starts_with("Files:")) {
        let lines: Vec<&str> = paragraph.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("License: "))
            .unwrap_or_else(|| panic!("no License in {paragraph}"));
        // The text follows the short name, or stands in a paragraph of its own.
        let inline = lines.get(at + 1).is_some_and(|l| l.starts_with(' '));
        for name in lines[at]["License: ".len()..]
            .split(" and ")
            .flat_map(|n| n.split(" or "))
        {
            assert!(
                inline || standalone.contains(&name),
                "no text for {name} ({paragraph})"
            );
        }
    }
    assert!(copyright.contains("/usr/share/common-licenses/Apache-2.0"));
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
