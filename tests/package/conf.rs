//! smtp-auth-insight.conf(5) from config.example.toml. The example file
//! is the one source: each table header (`[mail]`, or `# [policy]` for a
//! table that is off by default) opens a section, each key (`key = value`,
//! or `# key = value` for one without a default) is an entry with the
//! comment on its line and the indented comment lines below it, and the
//! comment paragraphs around them are printed where they stand.

use roff::{Roff, bold, italic, roman};

/// What a line of the example file is.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    /// `[name]`, `[[name]]`, commented or not.
    Table(&'a str),
    /// `key = value  # note`, commented out or not.
    Key {
        name: &'a str,
        value: &'a str,
        note: &'a str,
    },
    /// Comment text continuing the previous key's note.
    More(&'a str),
    /// A comment line of a paragraph.
    Text(&'a str),
    /// An indented comment line (an excerpt, printed as it is).
    Verbatim(&'a str),
    /// An empty line or a lone `#`: the end of a paragraph.
    Break,
}

/// `value  # note` split where the comment starts, outside quotes.
fn split_note(rest: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return (rest[..i].trim(), rest[i + 1..].trim()),
            _ => {}
        }
    }
    (rest.trim(), "")
}

fn key(text: &str) -> Option<Line<'_>> {
    let (name, rest) = text.split_once('=')?;
    let name = name.trim_end();
    let well_formed = !name.is_empty()
        && name.len() == name.trim_start().len()
        && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !well_formed {
        return None;
    }
    let (value, note) = split_note(rest);
    Some(Line::Key { name, value, note })
}

fn table(text: &str) -> Option<&str> {
    let name = text.trim_end();
    let inner = name.strip_prefix('[')?.strip_suffix(']')?;
    let plain = inner.trim_start_matches('[').trim_end_matches(']');
    plain
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
        .then_some(name)
}

/// Classifies one line; `after_key` says whether the line before belongs
/// to a key (its note may go on).
pub fn classify(line: &str, after_key: bool) -> Line<'_> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed == "#" {
        return Line::Break;
    }
    if let Some(comment) = line.strip_prefix('#') {
        let comment = comment.strip_prefix(' ').unwrap_or(comment);
        if comment.starts_with(' ') {
            // Indented: a key's note going on, or an excerpt.
            let inner = comment.trim_start();
            return match (after_key, inner.strip_prefix('#')) {
                (true, Some(note)) => Line::More(note.trim()),
                (true, None) => Line::More(inner),
                (false, _) => Line::Verbatim(comment),
            };
        }
        if let Some(name) = table(comment) {
            return Line::Table(name);
        }
        return key(comment).unwrap_or(Line::Text(comment));
    }
    if line.starts_with(' ')
        && let Some(note) = trimmed.strip_prefix('#')
    {
        return Line::More(note.trim());
    }
    if let Some(name) = table(trimmed) {
        return Line::Table(name);
    }
    key(trimmed).unwrap_or(Line::Text(trimmed))
}

/// The lines of `text`, classified.
pub fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out: Vec<Line<'_>> = Vec::new();
    for line in text.lines() {
        let after_key = matches!(out.last(), Some(Line::Key { .. } | Line::More(_)));
        out.push(classify(line, after_key));
    }
    out
}

/// A paragraph or an excerpt waiting for the section it belongs to.
enum Block<'a> {
    Paragraph(Vec<&'a str>),
    Excerpt(Vec<&'a str>),
}

fn emit(roff: &mut Roff, pending: &mut Vec<Block<'_>>) {
    for block in pending.drain(..) {
        match block {
            Block::Paragraph(lines) => {
                roff.control("PP", []);
                roff.text([roman(lines.join(" "))]);
            }
            Block::Excerpt(lines) => {
                roff.control("RS", ["4"]);
                roff.control("nf", []);
                for line in lines {
                    roff.text([roman(line)]);
                }
                roff.control("fi", []);
                roff.control("RE", []);
            }
        }
    }
}

/// The page: DESCRIPTION from the file's opening comment, a section per
/// top-level table (the keys before the first table under "TOP-LEVEL
/// KEYS"), a subsection per nested or repeated table. Comment paragraphs
/// wait for what follows them: a key takes them into its section, a
/// table's header into its own; an empty line ends the wait.
pub fn config_page(text: &str) -> String {
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "SMTP-AUTH-INSIGHT.CONF",
            "5",
            "",
            super::man::SOURCE,
            super::man::MANUAL,
        ],
    );
    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "smtp-auth-insight.conf - configuration of smtp-auth-insight",
    )]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([roman(
        "/etc/smtp-auth-insight/config.toml, or the file named by --config or $SMTP_AUTH_INSIGHT_CONFIG",
    )]);
    roff.control("SH", ["DESCRIPTION"]);
    let mut pending: Vec<Block<'_>> = Vec::new();
    let mut in_description = true;
    let mut seen: Vec<&str> = Vec::new();
    let mut ended = true;
    let all = lines(text);
    let raw: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < all.len() {
        match &all[i] {
            Line::Break => {
                ended = true;
                if raw[i].trim().is_empty() {
                    emit(&mut roff, &mut pending);
                    if in_description {
                        roff.control("PP", []);
                        roff.text([roman(
                            "Keys without a default, and the tables that are off unless \
                             configured ([[sources]], [policy], [[schedules]]), are shown \
                             with an example value.",
                        )]);
                        roff.control("SH", ["TOP-LEVEL KEYS"]);
                        in_description = false;
                    }
                }
            }
            Line::Text(t) | Line::More(t) => match pending.last_mut() {
                Some(Block::Paragraph(lines)) if !ended => lines.push(t),
                _ => {
                    pending.push(Block::Paragraph(vec![t]));
                    ended = false;
                }
            },
            Line::Verbatim(t) => match pending.last_mut() {
                Some(Block::Excerpt(lines)) => lines.push(t),
                _ => {
                    pending.push(Block::Excerpt(vec![t]));
                    ended = true;
                }
            },
            Line::Table(name) => {
                let repeated = seen.contains(name);
                let nested = repeated || name.contains('.');
                let title = match repeated {
                    true => format!("{name} (another)"),
                    false => name.to_string(),
                };
                roff.control(if nested { "SS" } else { "SH" }, [title.as_str()]);
                seen.push(name);
                emit(&mut roff, &mut pending);
                ended = true;
            }
            Line::Key {
                name, value, note, ..
            } => {
                // The paragraph right above a key (no break between) is
                // its description, unless the key has its own.
                let mut body: Vec<&str> = match (ended || !note.is_empty(), pending.last()) {
                    (false, Some(Block::Paragraph(_))) => match pending.pop() {
                        Some(Block::Paragraph(lines)) => lines,
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                emit(&mut roff, &mut pending);
                body.push(note);
                while let Some(Line::More(more)) = all.get(i + 1) {
                    body.push(more);
                    i += 1;
                }
                roff.control("TP", []);
                roff.text([bold(*name), roman(" = "), italic(*value)]);
                let body = body.join(" ");
                if !body.trim().is_empty() {
                    roff.text([roman(body.trim())]);
                }
                ended = true;
            }
        }
        i += 1;
    }
    emit(&mut roff, &mut pending);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "smtp-auth-insight(1), smtp-auth-insight-check-config(1), \
         /usr/share/doc/smtp-auth-insight/examples/config.example.toml",
    )]);
    roff.render()
}
