fn main() -> std::process::ExitCode {
    smtp_auth_insight::cli::main()
}
