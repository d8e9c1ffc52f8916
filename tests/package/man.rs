//! The man pages: one per command, from the command line's definition
//! (options, by clap_mangen) and the manual's text (examples and the main
//! page's sections, `smtp_auth_insight::cli::manual`); and
//! smtp-auth-insight.conf(5), from config.example.toml, so that the page
//! and the example file never say different things.

use super::conf::config_page;
use roff::{Roff, bold, roman};
use smtp_auth_insight::cli::manual;

pub const SOURCE: &str = concat!("smtp-auth-insight ", env!("CARGO_PKG_VERSION"));
pub const MANUAL: &str = "smtp-auth-insight manual";

/// (file name, page) for every command and the configuration file.
pub fn pages() -> Vec<(String, String)> {
    let command = smtp_auth_insight::cli::command();
    let mut out = vec![(
        "smtp-auth-insight.1".to_owned(),
        command_page(command.clone(), ""),
    )];
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        out.push((
            format!("smtp-auth-insight-{name}.1"),
            command_page(sub.clone(), name),
        ));
    }
    out.push((
        "smtp-auth-insight.conf.5".to_owned(),
        config_page(include_str!("../../config.example.toml")),
    ));
    out
}

/// Parts rendered separately by clap_mangen each start with the same
/// preamble; it is kept once.
fn join(parts: Vec<Vec<u8>>) -> String {
    let preamble = Roff::new().render();
    let mut page = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        let text = String::from_utf8(part).unwrap();
        match i {
            0 => page.push_str(&text),
            _ => page.push_str(text.strip_prefix(&preamble).unwrap_or(&text)),
        }
    }
    page
}

fn command_page(command: clap::Command, name: &str) -> String {
    let title = match name {
        "" => "smtp-auth-insight".to_owned(),
        n => format!("smtp-auth-insight-{n}"),
    };
    let usage = match name {
        "" => "smtp-auth-insight".to_owned(),
        n => format!("smtp-auth-insight {n}"),
    };
    let command = command
        .display_name(title.clone())
        .bin_name(usage)
        .disable_help_subcommand(true);
    let man = clap_mangen::Man::new(command.clone())
        .title(title.to_uppercase())
        .source(SOURCE)
        .manual(MANUAL);
    let mut parts = Vec::new();
    type Render = fn(&clap_mangen::Man, &mut dyn std::io::Write) -> std::io::Result<()>;
    let renders: [Render; 4] = [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
    ];
    for render in renders {
        let mut part = Vec::new();
        render(&man, &mut part).unwrap();
        parts.push(part);
    }
    let mut part = Vec::new();
    man.render_options_section(&mut part).unwrap();
    parts.push(part);
    let mut roff = Roff::new();
    if name.is_empty() {
        commands_section(&mut roff, &command);
    }
    examples_section(&mut roff, name);
    if name.is_empty() {
        for (title, paragraphs) in manual::sections() {
            roff.control("SH", [*title]);
            for p in *paragraphs {
                paragraph(&mut roff, p);
            }
        }
    } else {
        roff.control("SH", ["SEE ALSO"]);
        roff.text([roman(
            "smtp-auth-insight(1), smtp-auth-insight.conf(5), /usr/share/doc/smtp-auth-insight/README.md",
        )]);
    }
    parts.push(roff.render().into_bytes());
    join(parts)
}

/// The commands, each with its page: clap_mangen's own list would name a
/// page for `help`, which is no command of its own.
fn commands_section(roff: &mut Roff, command: &clap::Command) {
    roff.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands() {
        let name = sub.get_name();
        roff.control("TP", []);
        roff.text([bold(name)]);
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let about = about.trim_end_matches('.');
        roff.text([
            roman(format!("{about}. See ")),
            bold(format!("smtp-auth-insight-{name}")),
            roman("(1)."),
        ]);
    }
}

fn examples_section(roff: &mut Roff, name: &str) {
    let examples = manual::examples(name);
    assert!(!examples.is_empty(), "no example for {name:?}");
    roff.control("SH", ["EXAMPLES"]);
    for e in examples {
        roff.control("PP", []);
        roff.text([roman(e.what)]);
        preformatted(roff, &[e.command], true);
    }
}

/// Lines printed as they are, indented.
fn preformatted(roff: &mut Roff, lines: &[&str], command: bool) {
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for line in lines {
        match command {
            true => roff.text([bold(*line)]),
            false => roff.text([roman(*line)]),
        };
    }
    roff.control("fi", []);
    roff.control("RE", []);
}

/// A paragraph of the manual's text: lines after the first that start
/// with two spaces are printed as they are; a paragraph of two lines
/// whose first has no space is a term and its description (FILES).
fn paragraph(roff: &mut Roff, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    if lines.iter().all(|l| l.starts_with("  ")) {
        let trimmed: Vec<&str> = lines.iter().map(|l| &l[2..]).collect();
        preformatted(roff, &trimmed, true);
        return;
    }
    match lines.as_slice() {
        [term, description] if !term.contains(' ') => {
            roff.control("TP", []);
            roff.text([bold(*term)]);
            roff.text([roman(*description)]);
        }
        _ => {
            roff.control("PP", []);
            roff.text([roman(text)]);
        }
    }
}
