//! Starting a server on a data folder: create or open the folder and its
//! store, bootstrap the first admin, bind the listener. Shared by
//! `laissez serve`, the test kit and the benchmarks, so they all run the
//! same thing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use laissez_store::SqliteStore;
use tokio::net::TcpListener;

use crate::bootstrap::{BootstrapError, Bootstrapped, bootstrap};
use crate::oauth::keys::KeyRing;
use crate::{AppState, serve_tls_within, serve_within};

/// The database file inside a data folder.
pub const DATABASE_FILE: &str = "laissez.db";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data folder could not be created or is not a writable folder.
    #[error("data folder {path}: {why}")]
    DataFolder {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] laissez_store::Error),
    /// First-start setup failed.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// A gate to run here could not be set up.
    #[error(transparent)]
    Gate(#[from] crate::embedded::EmbeddedError),
    /// The signing keys could not be loaded or created.
    #[error(transparent)]
    Keys(#[from] crate::oauth::keys::KeyError),
    /// The issuer URL is not usable.
    #[error("issuer '{0}' must be an absolute http(s) URL without query or fragment")]
    Issuer(String),
    /// The server serves TLS but the issuer says http.
    #[error("issuer '{0}' must be https: the server serves TLS")]
    IssuerNotHttps(String),
    /// The leak intake could not be set up (GitHub keys, SMTP).
    #[error("leak intake: {0}")]
    Leaks(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// How to start.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The public issuer URL (default: http://, or https:// with `tls`, and
    /// the bound address).
    pub issuer: Option<String>,
    /// Serve TLS (with client certificates, if it asks for them) instead of
    /// plain HTTP.
    pub tls: Option<laissez_tls::Tls>,
    /// Client ID Metadata Document URL prefixes fetched from elsewhere
    /// (`https://app.example/` → `http://127.0.0.1:9000/`), for operators
    /// and for tests, where nothing has public https.
    pub metadata_document_mappings: Vec<(String, String)>,
    /// The organization's upstream OpenID Connect provider for human sign-in.
    pub upstream: Option<crate::web::federation::UpstreamConfig>,
    /// GitHub's secret-scanning keys (a file or URL), enabling signed leak reports.
    pub github_keys: Option<String>,
    /// Where leak notifications go (the issuer is filled in at start).
    pub notify: crate::leaks::notify::NotifyConfig,
    /// Timeouts and the connection cap of the server's listener.
    pub limits: laissez_gate::listen::Limits,
    /// How long a self-registered client that never obtained a token lives,
    /// in seconds (default 24 hours).
    pub unused_client_ttl: Option<i64>,
    /// Intent rules for task credentials (`--intent-rules`), before those kept in settings.
    pub intent_rules: Option<laissez_core::task::IntentRules>,
    /// Where audit records are streamed (the hostname is filled in at start).
    pub audit_stream: crate::audit_stream::StreamConfig,
    /// How often each person gets a hygiene digest, in seconds (`None`:
    /// weekly; `Some(0)`: never), when notifications are configured.
    pub hygiene_digest_every: Option<i64>,
}

/// A started server.
pub struct Started {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The issuer URL it publishes.
    pub issuer: String,
    /// What the first start did.
    pub bootstrapped: Bootstrapped,
    /// The store (to close it on shutdown).
    pub store: SqliteStore,
    /// The gates it runs itself: app name and address.
    pub gates: Vec<(String, SocketAddr)>,
    listener: TcpListener,
    tls: Option<laissez_tls::Tls>,
    limits: laissez_gate::listen::Limits,
    audit_stream: crate::audit_stream::StreamConfig,
    hygiene_digest_every: i64,
    state: AppState,
    embedded: Vec<crate::embedded::EmbeddedGate>,
}

impl Started {
    /// Serves until `shutdown` completes, then lets queued writes commit.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Some(notifier) = &self.state.leaks.notifier {
            notifier.clone().spawn();
        }
        crate::audit_stream::spawn(self.audit_stream.clone(), self.state.store.clone())
            .map_err(std::io::Error::other)?;
        if self.state.leaks.notifier.is_some() && self.hygiene_digest_every > 0 {
            tokio::spawn(crate::api::digests::periodic(
                self.state.clone(),
                self.hygiene_digest_every,
            ));
        }
        let failures = tokio::spawn(crate::auth::flush_failures(
            self.state.clone(),
            stopped.clone(),
        ));
        tokio::spawn(crate::tasks::prune(self.state.clone(), stopped.clone()));
        let mut server = match self.tls {
            None => tokio::spawn(serve_within(
                self.listener,
                self.state.clone(),
                self.limits,
                until_stopped(stopped.clone()),
            )),
            Some(tls) => tokio::spawn(serve_tls_within(
                self.listener,
                tls,
                self.state.clone(),
                self.limits,
                until_stopped(stopped.clone()),
            )),
        };
        // Gates fetch keys and the revocation feed from the server, so they
        // start once it serves.
        if !self.embedded.is_empty() {
            let token =
                crate::embedded::audit_credential(self.state.store.as_ref(), &self.state.namespace)
                    .await
                    .map_err(std::io::Error::other)?;
            for gate in self.embedded {
                let mut config = gate.config;
                config.audit_token = token.clone();
                let app = config.app.clone();
                match laissez_gate::Gate::new(config).await {
                    Ok(g) => {
                        tokio::spawn(g.serve(gate.listener, until_stopped(stopped.clone())));
                    }
                    Err(e) => tracing::error!(%app, error = %e, "the gate did not start"),
                }
            }
        }
        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown => {
                let _ = stop.send(true);
                server.await
            }
        };
        let _ = stop.send(true);
        let _ = failures.await;
        self.store.close();
        result.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Opens `data_dir` (creating it with mode 0700), bootstraps it and binds
/// `listen`. The issuer defaults to `http://` (`https://` with TLS) and the
/// bound address.
pub async fn start(
    data_dir: &Path,
    listen: &str,
    options: &Options,
) -> Result<Started, StartError> {
    let issuer = options.issuer.as_deref();
    prepare_folder(data_dir)?;
    let store = SqliteStore::open(data_dir.join(DATABASE_FILE))?;
    let keys = Arc::new(KeyRing::open(data_dir, crate::now())?);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen.to_owned(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: listen.to_owned(),
        source,
    })?;
    let issuer = match (issuer, &options.tls) {
        (Some(issuer), None) => validate_issuer(issuer)?,
        (Some(issuer), Some(_)) if !issuer.starts_with("https://") => {
            return Err(StartError::IssuerNotHttps(issuer.to_owned()));
        }
        (Some(issuer), Some(_)) => validate_issuer(issuer)?,
        (None, None) => format!("http://{addr}"),
        (None, Some(_)) => format!("https://{addr}"),
    };
    let mut state = AppState::new(Arc::new(store.clone()), issuer, keys);
    let metrics = state.metrics.clone();
    store.observe_writes(move |seconds| metrics.audit_write(seconds));
    state.mutual_tls = options
        .tls
        .as_ref()
        .is_some_and(laissez_tls::Tls::asks_client_certificates);
    state.documents = Arc::new(crate::oauth::cimd::MetadataDocuments::with_mappings(
        options.metadata_document_mappings.clone(),
    ));
    if let Some(rules) = &options.intent_rules {
        state.intents = Arc::new(rules.clone());
    }
    if let Some(ttl) = options.unused_client_ttl {
        state.registrations = Arc::new(
            crate::oauth::register::RegistrationLimits::with_unused_ttl(ttl),
        );
    }
    state.federation = options
        .upstream
        .clone()
        .map(|config| Arc::new(crate::web::federation::Federation::new(config)));
    let github = match &options.github_keys {
        Some(source) => Some(
            crate::leaks::github::GithubKeys::load(crate::leaks::github::KeySource::parse(source))
                .await
                .map_err(|e| StartError::Leaks(e.to_string()))?,
        ),
        None => None,
    };
    let mut notify = options.notify.clone();
    notify.issuer = state.issuer.clone();
    let notifier = if notify.channels().is_empty() {
        None
    } else {
        let notifier = crate::leaks::notify::Notifier::new(notify, state.store.clone())
            .map_err(StartError::Leaks)?;
        Some(Arc::new(notifier))
    };
    state.leaks = Arc::new(crate::leaks::LeakIntake { github, notifier });
    state.audit_sinks = options.audit_stream.sinks();
    let bootstrapped = bootstrap(state.store.as_ref(), &state.namespace, data_dir).await?;
    let embedded = crate::embedded::bind(state.store.as_ref(), &state.issuer).await?;
    let gates = embedded
        .iter()
        .filter_map(|g| Some((g.config.app.clone(), g.listener.local_addr().ok()?)))
        .collect();
    Ok(Started {
        addr,
        issuer: state.issuer.clone(),
        bootstrapped,
        store,
        gates,
        listener,
        tls: options.tls.clone(),
        limits: options.limits,
        audit_stream: crate::audit_stream::StreamConfig {
            hostname: url::Url::parse(&state.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            ..options.audit_stream.clone()
        },
        hygiene_digest_every: options.hygiene_digest_every.unwrap_or(7 * 86_400),
        state,
        embedded,
    })
}

fn validate_issuer(issuer: &str) -> Result<String, StartError> {
    let ok = url::Url::parse(issuer).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.query().is_none()
            && u.fragment().is_none()
            && u.host().is_some()
    });
    if ok {
        Ok(issuer.to_owned())
    } else {
        Err(StartError::Issuer(issuer.to_owned()))
    }
}

fn prepare_folder(path: &Path) -> Result<(), StartError> {
    let fail = |why: String| StartError::DataFolder {
        path: path.to_owned(),
        why,
    };
    if !path.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(path)
            .map_err(|e| fail(format!("cannot create it: {e}")))?;
    }
    if !path.is_dir() {
        return Err(fail("it is not a folder".into()));
    }
    // Probe writability up front so a read-only folder fails with one clear
    // line instead of an SQLite error on the first write.
    let probe = path.join(".laissez-write-probe");
    std::fs::write(&probe, b"").map_err(|e| fail(format!("it is not writable: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    // The folder holds the admin token and signing keys: keep it out of git
    // (and so out of `laissez scan` of the project around it).
    let ignore = path.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(
            &ignore,
            "# Laissez's data folder: the database, signing keys and the admin token. Never commit it.\n*\n",
        )
        .map_err(|e| fail(format!("cannot write {}: {e}", ignore.display())))?;
    }
    Ok(())
}
