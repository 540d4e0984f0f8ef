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
use crate::{AppState, serve};

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
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A started server.
pub struct Started {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What the first start did.
    pub bootstrapped: Bootstrapped,
    /// The store (to close it on shutdown).
    pub store: SqliteStore,
    listener: TcpListener,
    state: AppState,
}

impl Started {
    /// Serves until `shutdown` completes, then lets queued writes commit.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let result = serve(self.listener, self.state, shutdown).await;
        self.store.close();
        result
    }
}

/// Opens `data_dir` (creating it with mode 0700), bootstraps it and binds `listen`.
pub async fn start(data_dir: &Path, listen: &str) -> Result<Started, StartError> {
    prepare_folder(data_dir)?;
    let store = SqliteStore::open(data_dir.join(DATABASE_FILE))?;
    let state = AppState::new(Arc::new(store.clone()));
    let bootstrapped = bootstrap(state.store.as_ref(), &state.namespace, data_dir).await?;
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
    Ok(Started {
        addr,
        bootstrapped,
        store,
        listener,
        state,
    })
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
    Ok(())
}
