//! Command-line interface (design.md §7): parses arguments, runs the subcommand and maps the
//! outcome to an exit status. `anyhow` is used only here, at the application edge.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::{AuditSink, Config, ConfigError};
use crate::server::Server;

/// `println!` that does not panic when standard output is closed early (`pullgate audit | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` with the same tolerance as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod verify_bundle;

/// Exit status for an unusable configuration (`EX_USAGE`); the systemd unit does not restart
/// on it, since restarting cannot fix a bad file.
pub const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "pullgate",
    version,
    about = "A container-registry pull proxy that verifies what it lets through"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        /// Configuration file; without it the embedded default runs (Docker Hub, warn mode).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file and print what it configures.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Decide about IMAGE exactly as the proxy would (exit 0 allowed, 1 denied).
    Verify {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the audit-shaped record as JSON.
        #[arg(long)]
        json: bool,
        /// An image reference: [registry/]repository[:tag|@digest].
        image: String,
    },
    /// Summarise an audit log (a file, or standard input).
    Audit {
        file: Option<PathBuf>,
        /// Only records newer than this, e.g. 24h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// Only records with this decision: allow, deny, warn, unchecked.
        #[arg(long)]
        decision: Option<String>,
        /// Only images matching this glob (as in [[rule]] images).
        #[arg(long)]
        image: Option<String>,
    },
    /// Check image names for possible typosquats; prints one JSON object per name.
    Typosquat {
        /// Use this configuration's `[typosquat] known` files and `allow` globs.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Image references, as given to a client: [registry/]repository[:tag|@digest].
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Verify one Sigstore bundle offline (sigstore-conformance CLI protocol); exit 0
    /// verified, 1 not.
    VerifyBundle(verify_bundle::Args),
    /// Make keys for pin files and sign pin files.
    Pins {
        #[command(subcommand)]
        command: PinsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PinsCommand {
    /// Write a new Ed25519 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign INPUT ({"expires": RFC 3339, "images": {...}}) and print the signed pin file.
    Sign {
        #[arg(long)]
        key: PathBuf,
        input: PathBuf,
    },
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig { config } => check_config(config),
        Command::Verify {
            config,
            json,
            image,
        } => verify(config, json, &image),
        Command::Audit {
            file,
            since,
            decision,
            image,
        } => match audit(file, since, decision, image) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pullgate: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Typosquat { config, names } => typosquat(config, &names),
        Command::VerifyBundle(args) => verify_bundle::run(args),
        Command::Pins { command } => match pins(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pullgate: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PULLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn load(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.as_deref()).map_err(|e: ConfigError| {
        eprintln!("pullgate: configuration error: {e}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn serve(path: Option<PathBuf>) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pullgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        // Installed before anything else, so a signal during start-up is handled, not fatal.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let server = Server::bind(&config, Arc::new(SystemClock)).await?;
        let addr = server.local_addr()?;
        let scheme = if server.is_tls() { "https" } else { "http" };
        let proxy = server.proxy();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                proxy.reopen_audit();
            }
        });
        tracing::info!(address = %addr, "pullgate listening on {scheme}://{addr}");
        server
            .run(async move {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            })
            .await;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<crate::server::ServerError>()
                .is_some_and(Server::is_config_error)
            {
                eprintln!("pullgate: configuration error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            eprintln!("pullgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: Option<PathBuf>) -> ExitCode {
    let origin = path
        .as_ref()
        .map_or("embedded default config".to_owned(), |p| {
            p.display().to_string()
        });
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // No state dir: checking a config must not write trust state.
    let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let trust =
        crate::trust::TrustSet::from_config(&config.trust, Arc::new(SystemClock), generation, None);
    let trust = match trust {
        Ok(t) => t,
        Err(e) => {
            eprintln!("pullgate: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(p) = &config.server.users_file {
        if let Err(e) = crate::server::users::Users::load(p) {
            eprintln!("pullgate: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    if config.typosquat.mode != crate::config::TyposquatMode::Off {
        if let Err(e) = crate::typosquat::load::detector(&config.typosquat) {
            eprintln!("pullgate: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    outln!("{origin}: valid");
    let s = &config.server;
    let tls = if s.tls.is_some() { " (TLS)" } else { "" };
    outln!("listen: {}{tls}", s.listen);
    match &config.audit.sink {
        AuditSink::Stdout => outln!(
            "audit: standard output, on error {:?}",
            config.audit.on_error
        ),
        AuditSink::File(p) => outln!(
            "audit: {}, on error {:?}",
            p.display(),
            config.audit.on_error
        ),
    }
    outln!("registries:");
    for r in &config.registries {
        let mut notes = Vec::new();
        if r.default {
            notes.push("default".to_owned());
        }
        if !r.aliases.is_empty() {
            notes.push(format!("aliases {}", r.aliases.join(", ")));
        }
        if r.credentials.is_some() {
            notes.push("credentials".to_owned());
        }
        if !r.extra_roots.is_empty() {
            notes.push(format!("{} extra CA certificates", r.extra_roots.len()));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        outln!("  {} -> {}{notes}", r.name, r.url);
    }
    let status = trust.status();
    outln!("trust sources:");
    for t in &config.trust {
        let line = status
            .iter()
            .find(|(n, _)| n == &t.name)
            .map(|(_, l)| l.as_str())
            .unwrap_or("");
        outln!("  {} ({}): {line}", t.name, t.kind.as_str());
    }
    outln!("rules (first match wins):");
    for r in &config.rules {
        let mut trust = String::new();
        if !r.trust.is_empty() {
            trust.push_str(&format!(" any of [{}]", r.trust.join(", ")));
        }
        if !r.trust_all.is_empty() {
            trust.push_str(&format!(" all of [{}]", r.trust_all.join(", ")));
        }
        if let Some(repo) = &r.signature_repository {
            trust.push_str(&format!("; signatures in {repo}"));
        }
        if !r.predicate_types.is_empty() {
            trust.push_str(&format!(
                "; attestations count: {}",
                r.predicate_types.join(", ")
            ));
        }
        outln!("  {}: {} {:?}{trust}", r.name, r.images.join(" "), r.mode);
    }
    outln!("typosquat: {:?}", config.typosquat.mode);
    ExitCode::SUCCESS
}

/// `pullgate typosquat` (design.md §7): one JSON line per name, exit status 0.
fn typosquat(path: Option<PathBuf>, names: &[String]) -> ExitCode {
    use crate::typosquat::{load, normalize, Detector, ReferenceSet, Verdict};

    #[derive(serde::Serialize)]
    struct Line<'a> {
        name: &'a str,
        normalized: &'a str,
        #[serde(flatten)]
        verdict: &'a Verdict,
    }

    let detector = match path {
        Some(p) => {
            let config = match load(Some(p)) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match load::detector(&config.typosquat) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("pullgate: configuration error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
        None => Detector::new(ReferenceSet::builtin(), Vec::new()),
    };
    for name in names {
        let normalized = normalize(name);
        let verdict = detector.check(&normalized);
        let line = Line {
            name,
            normalized: &normalized,
            verdict: &verdict,
        };
        match serde_json::to_string(&line) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("pullgate: {e}"),
        }
    }
    ExitCode::SUCCESS
}

fn pins(command: PinsCommand) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;

    use crate::trust::pins::{format, key};
    match command {
        PinsCommand::Keygen { out } => {
            let sk = key::generate();
            let private = PathBuf::from(format!("{}.key", out.display()));
            let public = PathBuf::from(format!("{}.pub", out.display()));
            let mut opts = std::fs::OpenOptions::new();
            // Never overwrite an existing key, and never let the private key be readable by others,
            // not even for a moment.
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                opts.mode(0o600);
            }
            let mut f = opts
                .open(&private)
                .with_context(|| format!("cannot create {}", private.display()))?;
            f.write_all(key::private_pem(&sk)?.as_bytes())?;
            std::fs::write(&public, key::public_pem(&sk.verifying_key())?)
                .with_context(|| format!("cannot write {}", public.display()))?;
            outln!(
                "wrote {} and {} (key id {})",
                private.display(),
                public.display(),
                key::KeyId::of(&sk.verifying_key())
            );
            Ok(())
        }
        PinsCommand::Sign {
            key: key_path,
            input,
        } => {
            let sk = key::load_signing(&key_path)?;
            let bytes = std::fs::read(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            let text = format::sign(&bytes, &sk, now)
                .with_context(|| format!("cannot sign {}", input.display()))?;
            // Unlike the reports, a lost write here would leave a truncated pin file.
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .context("cannot write the signed pin file")?;
            Ok(())
        }
    }
}

/// Splits `[registry/]repository[:tag|@digest]` into the name and the reference (default tag
/// `latest`, as clients do).
fn split_image(image: &str) -> (&str, &str) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name, digest);
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    }
}

fn verify(path: Option<PathBuf>, json: bool, image: &str) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pullgate: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let (name, reference) = split_image(image);
    let outcome = runtime.block_on(async {
        let audit = crate::audit::AuditLog::open(&crate::config::AuditConfig {
            sink: AuditSink::Stdout,
            on_error: config.audit.on_error,
        })?;
        let proxy = crate::server::proxy::Proxy::with_audit(&config, Arc::new(SystemClock), audit)?;
        anyhow::Ok(proxy.verify_image(name, reference).await)
    });
    let (rec, allowed) = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pullgate: {e:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if json {
        match serde_json::to_string(&rec) {
            Ok(s) => outln!("{s}"),
            Err(e) => eprintln!("pullgate: {e}"),
        }
    } else {
        let at = rec
            .digest
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let rule = rec
            .rule
            .as_deref()
            .map(|r| format!(" rule '{r}'"))
            .unwrap_or_default();
        outln!(
            "{}: {}:{}{at}{rule}",
            rec.decision,
            rec.image,
            rec.reference
        );
        for r in &rec.reasons {
            outln!("  {r}");
        }
    }
    if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn audit(
    file: Option<PathBuf>,
    since: Option<String>,
    decision: Option<String>,
    image: Option<String>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;

    use crate::audit::summary::{summarise, Filter};
    let since = match since {
        Some(s) => {
            let d = crate::config::duration::parse(&s).map_err(anyhow::Error::msg)?;
            let now = crate::clock::Clock::now(&SystemClock);
            Some(now - time::Duration::try_from(d).context("--since is too long")?)
        }
        None => None,
    };
    if let Some(d) = &decision {
        if !["allow", "deny", "warn", "unchecked"].contains(&d.as_str()) {
            anyhow::bail!("--decision {d:?}: expected allow, deny, warn or unchecked");
        }
    }
    let image = image
        .map(|g| crate::policy::Glob::parse(&g))
        .transpose()
        .context("--image")?;
    let filter = Filter {
        since,
        decision,
        image,
    };
    let summary = match file {
        Some(p) => {
            let f =
                std::fs::File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
            summarise(std::io::BufReader::new(f), &filter)?
        }
        None => summarise(std::io::stdin().lock(), &filter)?,
    };
    out!("{}", summary.render(10));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_like_clients_do() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases = [
            ("nginx", ("nginx", "latest")),
            ("nginx:1.27", ("nginx", "1.27")),
            ("ghcr.io/org/app:v1", ("ghcr.io/org/app", "v1")),
            (
                "registry.test:5000/app",
                ("registry.test:5000/app", "latest"),
            ),
            ("registry.test:5000/app:2", ("registry.test:5000/app", "2")),
        ];
        for (input, want) in cases {
            assert_eq!(split_image(input), want, "{input}");
        }
        let by_digest = format!("nginx@{d}");
        assert_eq!(split_image(&by_digest), ("nginx", d.as_str()));
    }
}
