# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_smtp_auth_insight_global_optspecs
    string join \n config= h/help V/version
end

function __fish_smtp_auth_insight_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_smtp_auth_insight_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_smtp_auth_insight_using_subcommand
    set -l cmd (__fish_smtp_auth_insight_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -s V -l version -d 'Print version'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "run" -d 'Run the daemon: HTTP API, ingest, retention'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "import" -d 'Load events from files into the store (through the daemon when it runs)'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "report" -d 'Build a report from the store and print, write or mail it'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "alerts" -d 'List recent alerts, newest first'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "backtest" -d 'Replay logs through the detectors and print the alerts they would raise'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "holds" -d 'List the accounts the policy service contains'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "release" -d 'End an account\'s containment: the policy service lets it send again'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "check-config" -d 'Validate the configuration and say exactly what is wrong and where'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "hash-password" -d 'Read a password on stdin and print its Argon2 hash for [[server.users]]'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand run" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand import" -l format -d 'Input format' -r -f -a "ndjson\t'One JSON event per line (or a JSON array), as for POST /api/v1/events'
postfix\t'Postfix mail log (syslog, rsyslog RFC 3339 or journalctl short-iso)'
exim\t'Exim main log'"
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand import" -l host -d 'Host name for events and ids: replaces the syslog host of Postfix logs; Exim logs name no host, so the machine\'s host name is the default' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand import" -l cache-mb -d 'Database page cache for this import, in MiB [default: 2, whatever `store.cache_mb` says]. Imports write in key order and gain nothing from more' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand import" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l start -d 'First day (YYYY-MM-DD, inclusive); default: the last report.default_days days' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l end -d 'Last day (YYYY-MM-DD, inclusive); default: today' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l domain -d 'Only senders of this domain; `(none)` for identities without one' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l format -r -f -a "json\t''
csv\t''
html\t''
text\t''"
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l out -d 'Write to this file (atomically) instead of standard output' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l to -d 'Recipients; each must be allowed by mail.allowed_recipients' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l send -d 'Mail the report (HTML and text, CSV attached) instead of printing it. Through a running daemon the mail is queued, and the command says its request id; without a daemon it is sent at once'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -l wait -d 'With --send through a running daemon: wait until the mail is sent, or the daemon gives up on it'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand report" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand alerts" -l since -d 'Alerts raised since this date (YYYY-MM-DD, from its start in the configured time zone) or RFC 3339 time; default: the last 7 days' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand alerts" -l limit -d 'Most alerts listed' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand alerts" -l format -r -f -a "text\t'One line per entry, for a person to read'
json\t'One JSON object per line, as the API lists them'"
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand alerts" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand alerts" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand backtest" -l format -d 'Input format' -r -f -a "ndjson\t'One JSON event per line (or a JSON array), as for POST /api/v1/events'
postfix\t'Postfix mail log (syslog, rsyslog RFC 3339 or journalctl short-iso)'
exim\t'Exim main log'"
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand backtest" -l host -d 'Host name for events (as for `import`)' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand backtest" -l learn-days -d 'Learn from the first DAYS of the logs without printing their alerts. Replay starts with no history: every account is new at first, and busy ones raise new-sender alerts the live daemon (which knows them) would not' -r
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand backtest" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand backtest" -l all -d 'Also print re-notifications and resolutions of volume incidents'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand backtest" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand holds" -l format -r -f -a "text\t'One line per entry, for a person to read'
json\t'One JSON object per line, as the API lists them'"
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand holds" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand holds" -l all -d 'Also list containments that ended (released or expired)'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand holds" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand release" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand release" -l requeue -d 'Then hand the queue ids of the messages it had put on hold to `postsuper -H -` (found on PATH; root only): Postfix sends them. Also for an account released earlier'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand release" -l delete-held -d 'Then hand them to `postsuper -d -` instead: Postfix deletes them'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand release" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand check-config" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand check-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand hash-password" -l config -d 'Configuration file (TOML). Default: /etc/smtp-auth-insight/config.toml when it exists, else built-in defaults' -r -F
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand hash-password" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "run" -d 'Run the daemon: HTTP API, ingest, retention'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "import" -d 'Load events from files into the store (through the daemon when it runs)'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "report" -d 'Build a report from the store and print, write or mail it'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "alerts" -d 'List recent alerts, newest first'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "backtest" -d 'Replay logs through the detectors and print the alerts they would raise'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "holds" -d 'List the accounts the policy service contains'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "release" -d 'End an account\'s containment: the policy service lets it send again'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "check-config" -d 'Validate the configuration and say exactly what is wrong and where'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "hash-password" -d 'Read a password on stdin and print its Argon2 hash for [[server.users]]'
complete -c smtp-auth-insight -n "__fish_smtp_auth_insight_using_subcommand help; and not __fish_seen_subcommand_from run import report alerts backtest holds release check-config hash-password help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
