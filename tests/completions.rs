//! The shell completions the package installs, loaded in the real shells:
//! each completes a subcommand, and a subcommand's options (which bash's
//! generated script once never offered).

use std::path::{Path, PathBuf};
use std::process::Command;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/completions")
        .join(name)
}

/// Runs `shell ARGS`, its standard output; `what` says which package has it.
fn output(command: &mut Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what} (tests/support/install-deps.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The three questions asked of every shell: (command line, a candidate
/// it must offer).
const CASES: [(&str, &str); 3] = [
    ("smtp-auth-insight report --f", "--format"),
    ("smtp-auth-insight release --re", "--requeue"),
    ("smtp-auth-insight rel", "release"),
];

fn bash(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let probe = format!(
        "source {script:?}\nCOMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE={line:?}\n\
         COMP_POINT=${{#COMP_LINE}}\n_smtp__auth__insight smtp-auth-insight \"{last}\" \"{prev}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script = script("smtp-auth-insight.bash"),
        words = words
            .iter()
            .map(|w| format!("{w:?}"))
            .collect::<Vec<_>>()
            .join(" "),
        cword = words.len() - 1,
        last = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    output(Command::new("bash").arg("-c").arg(probe), "bash")
}

/// zsh completes only inside its line editor: an interactive zsh on a
/// pseudo-terminal (zsh/zpty) loads the completion with compinit, gets
/// the line and a TAB, and a `compadd` wrapper writes every candidate to
/// a file. The command after the TAB marks the end: the editor handles
/// input in order.
fn zsh(line: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        script("_smtp-auth-insight"),
        dir.path().join("_smtp-auth-insight"),
    )
    .unwrap();
    let out = dir.path().join("candidates");
    let driver = format!(
        r#"zmodload zsh/zpty || exit 2
zpty z zsh -f -i
step() {{ zpty -w z "$1"; zpty -r z reply '*<RE''ADY>*' }}
step "PS1='<RE''ADY>'; unsetopt zle_bracketed_paste prompt_sp"
step "fpath=({dir:?} \$fpath)"
step 'autoload -Uz compinit && compinit -u -D'
step 'compadd () {{ if [[ ${{@[1,(i)(-|--)]}} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi; local -a hits; builtin compadd -A hits "$@"; print -rl -- $hits >> {out:?} }}'
zpty -w -n z {line:?}$'\t'
zpty -w z $'\C-u''echo __do""ne__'
zpty -r z reply '*__done__*'
zpty -d z
"#,
        dir = dir.path(),
    );
    output(Command::new("zsh").arg("-f").arg("-c").arg(driver), "zsh");
    std::fs::read_to_string(out).unwrap_or_default()
}

fn fish(line: &str) -> String {
    let probe = format!(
        "source {:?}; complete --do-complete {line:?}",
        script("smtp-auth-insight.fish")
    );
    let candidates = output(
        Command::new("fish").arg("--no-config").arg("-c").arg(probe),
        "fish",
    );
    // "candidate<TAB>description" lines.
    candidates
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(shell: &str, complete: fn(&str) -> String) {
    for (line, expected) in CASES {
        let candidates = complete(line);
        let candidates: Vec<&str> = candidates.lines().filter(|c| !c.is_empty()).collect();
        assert!(
            candidates.contains(&expected),
            "{shell}: {line:?} does not offer {expected}: {candidates:?}"
        );
        // Candidates follow the word being completed.
        let word = line.rsplit(' ').next().unwrap();
        assert!(
            candidates.iter().all(|c| c.starts_with(word)),
            "{shell}: {line:?} offers {candidates:?}"
        );
    }
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    check("bash", bash);
}

#[test]
fn zsh_completes_subcommands_and_their_options() {
    check("zsh", zsh);
}

#[test]
fn fish_completes_subcommands_and_their_options() {
    check("fish", fish);
}
