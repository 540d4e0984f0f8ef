//! The embedded SQLite backend.
//!
//! One writer thread owns the only write connection and commits in groups:
//! it takes every job waiting (up to a bound), runs each inside its own
//! savepoint so one failure does not touch the others, commits once with
//! `synchronous=FULL`, and only then answers each caller. Durability costs one
//! fsync per group instead of one per write, which is what lets hundreds of
//! concurrent token creations finish quickly. Reads run on a small pool of
//! read-only connections (WAL lets them proceed while the writer commits).

pub mod backup;
mod cache;
mod leak_rows;
mod oauth_rows;
mod rows;
mod schema;
mod task_rows;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use laissez_core::audit::{AuditEvent, AuditRecord, Verification};
use laissez_core::credential::{Credential, Settings};
use laissez_core::leak::{Incident, LeakAction, LeakReport};
use laissez_core::{Name, Policy, PolicySet, Principal, Role, Status};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

use crate::task::{ApprovalRecord, Decision, Poll, TaskFilter, TaskRecord, TaskState};
use crate::{Caller, Error, Notification, Redemption, Rolled, Store, TokenStatus};

/// Jobs committed together at most.
const MAX_GROUP: usize = 256;
/// Read connections kept open.
const READERS: usize = 8;
/// Prepared statements kept per connection (rusqlite keeps 16 by default).
const STATEMENT_CACHE: usize = 128;

/// A queued write. Given no connection, it must fail without running.
type Job = Box<dyn FnOnce(Option<&Connection>) -> Reply + Send>;

/// What the writer does after the group's commit: answer the caller with the
/// job's own result, or with the commit's error.
struct Reply {
    ok: bool,
    send: Box<dyn FnOnce(Option<Error>) + Send>,
}

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    /// The one write connection: the writer thread's, lent to a caller
    /// that finds it idle (see [`SqliteStore::write`]).
    write_conn: Arc<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    /// The last task sequence number handed out.
    task_seq: AtomicI64,
    /// Roles and policies, resources and settings between their changes.
    config: cache::ConfigCache,
    /// Told how long each write took, queueing and commit included.
    write_observer: std::sync::OnceLock<WriteObserver>,
}

/// Told each write's latency, in seconds.
type WriteObserver = Box<dyn Fn(f64) + Send + Sync>;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Room for every statement a hot path prepares, so none is parsed twice.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file `path` and starts the writer.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, Error> {
        let path = path.as_ref().to_path_buf();
        restrict_files(&path)?;
        let conn = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Unavailable(format!(
                "cannot switch {} to WAL mode (got {mode}); is the folder writable?",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        schema::migrate(&conn)?;
        let task_seq = AtomicI64::new(task_rows::last_seq(&conn)?);
        let (tx, rx) = mpsc::channel::<Job>();
        let write_conn = Arc::new(Mutex::new(conn));
        let thread_conn = write_conn.clone();
        std::thread::Builder::new()
            .name("laissez-store-writer".into())
            .spawn(move || write_loop(&thread_conn, rx))
            .map_err(|e| Error::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(Some(tx)),
                write_conn,
                readers: Mutex::new(Vec::new()),
                task_seq,
                config: cache::ConfigCache::default(),
                write_observer: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Tells `observer` how long each write transaction took, from the
    /// call to its durable commit (every change commits with its audit
    /// record, so this is how long audit writes take). Set once; later
    /// calls are ignored.
    pub fn observe_writes(&self, observer: impl Fn(f64) + Send + Sync + 'static) {
        let _ = self.inner.write_observer.set(Box::new(observer));
    }

    /// Stops accepting writes; queued writes still commit.
    pub fn close(&self) {
        if let Ok(mut writer) = self.inner.writer.lock() {
            writer.take();
        }
    }

    /// A write someone waits for: committed on the calling thread when the
    /// connection is idle, else with the writer thread's next group.
    async fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        self.submit(job, true).await
    }

    /// A background write (audit batches from gates, last-use times,
    /// pruning): always the writer thread's, so it never borrows a thread
    /// that serves requests.
    async fn write_queued<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        self.submit(job, false).await
    }

    async fn submit<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
        here: bool,
    ) -> Result<T, Error> {
        let started = std::time::Instant::now();
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => job(conn),
                None => Err(Error::Unavailable("the transaction could not begin".into())),
            };
            Reply {
                ok: result.is_ok(),
                send: Box::new(move |commit_error| {
                    let _ = tx.send(match commit_error {
                        Some(e) => Err(e),
                        None => result,
                    });
                }),
            }
        });
        let queued = if here {
            self.commit_here(job)?
        } else {
            Some(job)
        };
        if let Some(job) = queued {
            let writer = self.inner.writer.lock().map_err(|_| Error::Closed)?;
            writer
                .as_ref()
                .ok_or(Error::Closed)?
                .send(job)
                .map_err(|_| Error::Closed)?;
        }
        let result = rx.await.map_err(|_| Error::Closed)?;
        if let Some(observe) = self.inner.write_observer.get() {
            observe(started.elapsed().as_secs_f64());
        }
        result
    }

    /// Commits `job` on the calling thread when the write connection is
    /// idle and the runtime can lend this thread (multi-threaded tokio:
    /// `block_in_place` moves the other tasks to another worker while the
    /// commit waits for the disk). A lone write then costs no hand-off to
    /// the writer thread and back, which on a small machine is most of its
    /// latency. Returns the job when it must be queued instead: the
    /// connection is busy (the writer thread then commits the waiting jobs
    /// together, as one group) or the runtime is single-threaded.
    fn commit_here(&self, job: Job) -> Result<Option<Job>, Error> {
        let lendable = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !lendable {
            return Ok(Some(job));
        }
        let Ok(conn) = self.inner.write_conn.try_lock() else {
            return Ok(Some(job));
        };
        // Closed means closed, whichever path a write would take.
        if self
            .inner
            .writer
            .lock()
            .map_err(|_| Error::Closed)?
            .is_none()
        {
            return Err(Error::Closed);
        }
        tokio::task::block_in_place(|| commit_jobs(&conn, &mut vec![job].into_iter()));
        Ok(None)
    }

    /// A mutation and its audit record, in one transaction.
    async fn mutate(
        &self,
        audit: AuditEvent,
        change: impl FnOnce(&Connection) -> Result<(), Error> + Send + 'static,
    ) -> Result<(), Error> {
        self.write(move |conn| {
            change(conn)?;
            rows::append_audit(conn, audit, now())
        })
        .await
    }

    /// A read on the blocking pool: for lists and scans, whose cost grows
    /// with the data and must not hold an async worker.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.snapshot(query))
            .await
            .map_err(|e| Error::Unavailable(format!("read task failed: {e}")))?
    }

    /// A point read by key on the calling thread: an indexed lookup of a
    /// few rows, cheaper than the two thread hand-offs of [`Self::read`]
    /// (in WAL mode a reader never waits for the writer).
    fn lookup<T>(&self, query: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        self.inner.snapshot(query)
    }
}

impl Inner {
    /// Runs `query` in its own read transaction on a pooled connection.
    fn snapshot<T>(&self, query: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let pooled = self.readers.lock().ok().and_then(|mut r| r.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => open(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        };
        // Each read is its own snapshot.
        let result = (|| {
            let tx = conn.unchecked_transaction()?;
            let value = query(&tx)?;
            tx.finish()?;
            Ok(value)
        })();
        if let Some(mut readers) = self.readers.lock().ok().filter(|r| r.len() < READERS) {
            readers.push(conn);
        }
        result
    }
}

/// Creates the database file readable by its owner only (SQLite gives its
/// `-wal` and `-shm` files the database's mode), and takes group and other
/// access away from files an older version left open.
fn restrict_files(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let fail = |e: std::io::Error| {
            Error::Unavailable(format!("cannot create {}: {e}", path.display()))
        };
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(fail)?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = Path::new(&name);
            if let Ok(meta) = std::fs::metadata(file)
                && meta.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                    .map_err(fail)?;
            }
        }
    }
    Ok(())
}

fn write_loop(conn: &Mutex<Connection>, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        // A poisoned lock only means a job panicked; the connection is
        // still consistent (its transaction was rolled back or committed).
        let conn = conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // One transaction per group, unless a failure rolls it back part-way;
        // then the jobs not yet run go on in a fresh one.
        let mut queue = group.into_iter();
        while queue.len() > 0 {
            commit_jobs(&conn, &mut queue);
        }
    }
}

/// Runs one statement, parsed once per connection (from its cache of
/// prepared statements); returns the rows it changed.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Runs one transaction-control statement.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    exec(conn, sql, []).map(drop)
}

/// Runs jobs from `queue` in one transaction, each in its own savepoint, until
/// the queue is empty or a failure rolls back the whole transaction (SQLite
/// does that on disk full and I/O errors); then commits and answers each job.
/// A job alone needs no savepoint: when it fails, the whole transaction is
/// rolled back instead.
fn commit_jobs(conn: &Connection, queue: &mut std::vec::IntoIter<Job>) {
    // A job that panicked (a bug) left its transaction open: end it, so the
    // next group does not fail to begin.
    if !conn.is_autocommit() {
        let _ = control(conn, "ROLLBACK");
    }
    if queue.len() == 1
        && let Some(job) = queue.next()
    {
        return commit_alone(conn, job);
    }
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let error = Error::from(e);
        for job in queue {
            (job(None).send)(Some(error.clone()));
        }
        return;
    }
    let mut replies = Vec::new();
    let mut rolled_back = false;
    for job in queue.by_ref() {
        if let Err(e) = control(conn, "SAVEPOINT job") {
            replies.push((job(None), Some(Error::from(e))));
            continue;
        }
        let reply = job(Some(conn));
        // Outside a transaction the savepoint is gone with it.
        if !conn.is_autocommit() {
            let undone = if reply.ok {
                Ok(())
            } else {
                control(conn, "ROLLBACK TO job")
            };
            if let Err(e) = undone.and_then(|()| control(conn, "RELEASE job")) {
                tracing::error!(error = %e, "savepoint failed");
            }
        }
        replies.push((reply, None));
        if conn.is_autocommit() {
            // Statements run now would each commit on their own: stop here.
            rolled_back = true;
            break;
        }
    }
    let commit_error = if rolled_back {
        Some(Error::Unavailable(
            "another write in the same group commit failed and rolled back the transaction; nothing was changed".into(),
        ))
    } else {
        control(conn, "COMMIT").err().map(Error::from)
    };
    if commit_error.is_some() && !conn.is_autocommit() {
        let _ = control(conn, "ROLLBACK");
    }
    for (reply, savepoint_error) in replies {
        // A job that failed on its own keeps its own error.
        let error = match (reply.ok, savepoint_error) {
            (_, Some(e)) => Some(e),
            (true, None) => commit_error.clone(),
            (false, None) => None,
        };
        (reply.send)(error);
    }
}

/// One job in a transaction of its own: committed when it succeeded, rolled
/// back when it failed (it answers with its own error then), as a job of a
/// group would be by its savepoint.
fn commit_alone(conn: &Connection, job: Job) {
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        (job(None).send)(Some(Error::from(e)));
        return;
    }
    let reply = job(Some(conn));
    let error = if !reply.ok {
        if !conn.is_autocommit() {
            let _ = control(conn, "ROLLBACK");
        }
        None
    } else if conn.is_autocommit() {
        // SQLite rolled the transaction back itself (disk full, I/O error).
        Some(Error::Unavailable(
            "SQLite rolled the write's transaction back; nothing was changed".into(),
        ))
    } else {
        let committed = control(conn, "COMMIT").err().map(Error::from);
        if committed.is_some() && !conn.is_autocommit() {
            let _ = control(conn, "ROLLBACK");
        }
        committed
    };
    (reply.send)(error);
}

#[async_trait]
impl Store for SqliteStore {
    async fn is_bootstrapped(&self) -> Result<bool, Error> {
        self.read(|c| Ok(rows::principals(c)?.iter().any(|p| p.kind.is_human())))
            .await
    }

    async fn bootstrap(
        &self,
        admin: Principal,
        policy: Policy,
        credential: Credential,
        secret_hash: [u8; 32],
        audit: AuditEvent,
    ) -> Result<bool, Error> {
        self.write(move |c| {
            if rows::principals(c)?.iter().any(|p| p.kind.is_human()) {
                return Ok(false);
            }
            rows::insert_principal(c, &admin)?;
            rows::insert_policy(c, &policy)?;
            rows::insert_credential(c, &credential, &secret_hash)?;
            rows::append_audit(c, audit, now())?;
            Ok(true)
        })
        .await
    }

    async fn create_principal(&self, principal: Principal, audit: AuditEvent) -> Result<(), Error> {
        self.mutate(audit, move |c| rows::insert_principal(c, &principal))
            .await
    }

    async fn principal(&self, id_or_name: &str) -> Result<Option<Principal>, Error> {
        let key = id_or_name.to_owned();
        self.lookup(move |c| rows::principal(c, &key))
    }

    async fn principals(&self) -> Result<Vec<Principal>, Error> {
        self.read(rows::principals).await
    }

    async fn set_principal_status(
        &self,
        id: &str,
        status: Status,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let id = id.to_owned();
        self.mutate(audit, move |c| rows::set_status(c, &id, status))
            .await
    }

    async fn set_principal_owner(
        &self,
        id: &str,
        owner_id: &str,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let (id, owner_id) = (id.to_owned(), owner_id.to_owned());
        self.mutate(audit, move |c| rows::set_owner(c, &id, &owner_id))
            .await
    }

    async fn chain(&self, id: &str) -> Result<Vec<Principal>, Error> {
        let id = id.to_owned();
        self.lookup(move |c| rows::chain(c, &id))
    }

    async fn create_credential(
        &self,
        credential: Credential,
        secret_hash: [u8; 32],
        audit: AuditEvent,
    ) -> Result<(), Error> {
        self.mutate(audit, move |c| {
            rows::insert_credential(c, &credential, &secret_hash)
        })
        .await
    }

    async fn caller(&self, secret_hash: &[u8; 32]) -> Result<Option<Caller>, Error> {
        let hash = *secret_hash;
        self.lookup(move |c| rows::caller(c, &hash))
    }

    async fn credential(&self, id: &str) -> Result<Option<Credential>, Error> {
        let id = id.to_owned();
        self.lookup(move |c| rows::credential(c, &id))
    }

    async fn stored_credential(&self, id: &str) -> Result<Option<crate::StoredCredential>, Error> {
        let id = id.to_owned();
        self.lookup(move |c| rows::stored_credential(c, &id))
    }

    async fn credentials(&self, principal_id: Option<&str>) -> Result<Vec<Credential>, Error> {
        let id = principal_id.map(str::to_owned);
        self.read(move |c| rows::credentials(c, id.as_deref()))
            .await
    }

    async fn roll_credential(
        &self,
        id: &str,
        rolled: Rolled,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let id = id.to_owned();
        self.mutate(audit, move |c| rows::roll_credential(c, &id, &rolled))
            .await
    }

    async fn revoke_credential(&self, id: &str, at: i64, audit: AuditEvent) -> Result<(), Error> {
        let id = id.to_owned();
        self.mutate(audit, move |c| rows::revoke_credential(c, &id, at))
            .await
    }

    async fn touch_credential(&self, id: &str, at: i64) -> Result<(), Error> {
        let id = id.to_owned();
        self.write_queued(move |c| rows::touch_credential(c, &id, at))
            .await
    }

    async fn create_role(&self, role: Role, audit: AuditEvent) -> Result<(), Error> {
        self.mutate(audit, move |c| rows::insert_role(c, &role))
            .await
    }

    async fn roles(&self) -> Result<Vec<Role>, Error> {
        self.read(rows::roles).await
    }

    async fn role(&self, name: &Name) -> Result<Option<Role>, Error> {
        let name = name.as_str().to_owned();
        self.lookup(move |c| rows::role(c, &name))
    }

    async fn create_policy(&self, policy: Policy, audit: AuditEvent) -> Result<(), Error> {
        self.mutate(audit, move |c| rows::insert_policy(c, &policy))
            .await
    }

    async fn delete_policy(&self, id: &str, audit: AuditEvent) -> Result<(), Error> {
        let id = id.to_owned();
        self.mutate(audit, move |c| rows::delete_policy(c, &id))
            .await
    }

    async fn policies(&self, principal_id: Option<&str>) -> Result<Vec<Policy>, Error> {
        let id = principal_id.map(str::to_owned);
        self.read(move |c| rows::policies(c, id.as_deref())).await
    }

    async fn policy_set(&self, principal_ids: &[String]) -> Result<PolicySet, Error> {
        self.lookup(|c| {
            self.inner
                .config
                .policy_set(c, principal_ids, |c| rows::policy_set(c, principal_ids))
        })
    }

    async fn settings(&self) -> Result<Settings, Error> {
        self.lookup(|c| self.inner.config.settings(c, rows::settings))
    }

    async fn check_writable(&self) -> Result<(), Error> {
        self.write(|_| Ok(())).await
    }

    async fn set_settings(&self, settings: Settings, audit: AuditEvent) -> Result<(), Error> {
        self.mutate(audit, move |c| rows::set_settings(c, &settings))
            .await
    }

    async fn append_audit(&self, audit: AuditEvent) -> Result<(), Error> {
        self.write(move |c| rows::append_audit(c, audit, now()))
            .await
    }

    async fn append_audit_batch(&self, events: Vec<AuditEvent>) -> Result<(), Error> {
        self.write_queued(move |c| {
            let at = now();
            events
                .into_iter()
                .try_for_each(|event| rows::append_audit(c, event, at))
        })
        .await
    }

    async fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, Error> {
        self.read(move |c| rows::audit_records(c, after, limit))
            .await
    }

    async fn verify_audit(&self) -> Result<Verification, Error> {
        self.read(rows::verify_audit).await
    }

    async fn queue_digests(
        &self,
        digests: Vec<crate::Digest>,
        channels: Vec<String>,
        at: i64,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        self.mutate(audit, move |c| {
            leak_rows::queue_digests(c, &digests, &channels, at)
        })
        .await
    }

    async fn digest(&self, id: &str) -> Result<Option<crate::Digest>, Error> {
        let id = id.to_owned();
        self.read(move |c| leak_rows::digest(c, &id)).await
    }

    async fn last_digest_at(&self) -> Result<Option<i64>, Error> {
        self.read(leak_rows::last_digest_at).await
    }

    async fn audit_last_seq(&self) -> Result<i64, Error> {
        self.lookup(|c| {
            Ok(
                c.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM audit_log")?
                    .query_row([], |r| r.get(0))?,
            )
        })
    }

    async fn stream_cursor(&self, sink: &str) -> Result<i64, Error> {
        let key = rows::stream_key(sink);
        self.lookup(move |c| rows::stream_cursor(c, &key))
    }

    async fn advance_stream_cursor(&self, sink: &str, from: i64, to: i64) -> Result<bool, Error> {
        let key = rows::stream_key(sink);
        self.write(move |c| {
            if rows::stream_cursor(c, &key)? != from {
                return Ok(false);
            }
            rows::set_stream_cursor(c, &key, to)?;
            Ok(true)
        })
        .await
    }

    async fn set_stream_cursor(
        &self,
        sink: &str,
        seq: i64,
        audit: Option<AuditEvent>,
    ) -> Result<(), Error> {
        let key = rows::stream_key(sink);
        self.write(move |c| {
            rows::set_stream_cursor(c, &key, seq)?;
            match audit {
                Some(audit) => rows::append_audit(c, audit, now()),
                None => Ok(()),
            }
        })
        .await
    }

    async fn create_client(
        &self,
        client: laissez_oauth::client::Client,
        secret_hash: Option<[u8; 32]>,
        registration_hash: Option<[u8; 32]>,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        self.mutate(audit, move |c| {
            rows::insert_client(c, &client, secret_hash.as_ref())?;
            match registration_hash {
                Some(hash) => rows::set_registration(c, &client.client_id, &hash),
                None => Ok(()),
            }
        })
        .await
    }

    async fn registration_token(&self, client_id: &str) -> Result<Option<[u8; 32]>, Error> {
        let id = client_id.to_owned();
        self.lookup(move |c| rows::registration(c, &id))
    }

    async fn update_client(
        &self,
        client: laissez_oauth::client::Client,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        self.mutate(audit, move |c| rows::update_client(c, &client))
            .await
    }

    async fn delete_client(&self, client_id: &str, audit: AuditEvent) -> Result<(), Error> {
        let id = client_id.to_owned();
        self.mutate(audit, move |c| rows::delete_client(c, &id, now()))
            .await
    }

    async fn put_resource(
        &self,
        resource: laissez_oauth::protected::ProtectedResource,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        self.mutate(audit, move |c| rows::put_resource(c, &resource, now()))
            .await
    }

    async fn resources(&self) -> Result<Vec<laissez_oauth::protected::ProtectedResource>, Error> {
        self.lookup(|c| self.inner.config.resources(c, rows::resources))
    }

    async fn clients(&self) -> Result<Vec<laissez_oauth::client::Client>, Error> {
        self.read(rows::clients).await
    }

    async fn clients_page(
        &self,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<laissez_oauth::client::Client>, Error> {
        self.read(move |c| rows::clients_page(c, after, limit))
            .await
    }

    async fn client(&self, client_id: &str) -> Result<Option<rows::ClientRow>, Error> {
        let id = client_id.to_owned();
        self.lookup(move |c| rows::client(c, &id))
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: i64,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let jti = jti.to_owned();
        self.mutate(audit, move |c| {
            rows::revoke_access_token(c, &jti, expires_at, now())
        })
        .await
    }

    async fn revoked_access_tokens(&self) -> Result<Vec<String>, Error> {
        self.read(|c| rows::revoked_access_tokens(c, now())).await
    }

    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, Error> {
        let jti = jti.to_owned();
        self.lookup(move |c| rows::is_access_token_revoked(c, &jti))
    }

    async fn set_password(
        &self,
        user_id: &str,
        phc: String,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let id = user_id.to_owned();
        self.mutate(audit, move |c| {
            oauth_rows::set_password(c, &id, &phc, now())
        })
        .await
    }

    async fn password(&self, user_id: &str) -> Result<Option<String>, Error> {
        let id = user_id.to_owned();
        self.lookup(move |c| oauth_rows::password(c, &id))
    }

    async fn create_session(
        &self,
        id_hash: [u8; 32],
        user_id: &str,
        expires_at: i64,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let user = user_id.to_owned();
        self.mutate(audit, move |c| {
            oauth_rows::create_session(c, &id_hash, &user, expires_at)?;
            rows::cap_sessions(c, &user, crate::MAX_SESSIONS, now()).map(|_| ())
        })
        .await
    }

    async fn sessions(&self, user_id: &str) -> Result<Vec<(String, i64)>, Error> {
        let user = user_id.to_owned();
        self.read(move |c| rows::sessions(c, &user, now())).await
    }

    async fn end_session(
        &self,
        user_id: &str,
        handle: &str,
        audit: AuditEvent,
    ) -> Result<bool, Error> {
        let (user, handle) = (user_id.to_owned(), handle.to_owned());
        self.write(move |c| {
            let ended = rows::end_session(c, &user, &handle)?;
            if ended {
                rows::append_audit(c, audit, now())?;
            }
            Ok(ended)
        })
        .await
    }

    async fn inactive_principal_ids(&self) -> Result<Vec<String>, Error> {
        self.read(oauth_rows::suspended_principal_ids).await
    }

    async fn federated_user(&self, issuer: &str, subject: &str) -> Result<Option<String>, Error> {
        let (issuer, subject) = (issuer.to_owned(), subject.to_owned());
        self.lookup(move |c| oauth_rows::federated_user(c, &issuer, &subject))
    }

    async fn link_federated(
        &self,
        issuer: &str,
        subject: &str,
        user_id: &str,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let (issuer, subject, user) = (issuer.to_owned(), subject.to_owned(), user_id.to_owned());
        self.mutate(audit, move |c| {
            oauth_rows::link_federated(c, &issuer, &subject, &user, now())
        })
        .await
    }

    async fn create_login_state(
        &self,
        state_hash: [u8; 32],
        data: String,
        expires_at: i64,
    ) -> Result<(), Error> {
        self.write(move |c| {
            oauth_rows::create_login_state(c, &state_hash, &data, expires_at, now())
        })
        .await
    }

    async fn take_login_state(&self, state_hash: [u8; 32]) -> Result<Option<String>, Error> {
        self.write(move |c| oauth_rows::take_login_state(c, &state_hash, now()))
            .await
    }

    async fn session(&self, id_hash: [u8; 32]) -> Result<Option<(String, i64)>, Error> {
        self.lookup(move |c| oauth_rows::session(c, &id_hash))
    }

    async fn create_code(
        &self,
        code_hash: [u8; 32],
        code: laissez_oauth::grant::AuthorizationCode,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        self.mutate(audit, move |c| {
            oauth_rows::create_code(c, &code_hash, &code)?;
            oauth_rows::record_grant(
                c,
                &code.user_id,
                &code.client_id,
                &code.scope,
                code.resource.as_deref(),
                &code.accounts,
                now(),
            )
        })
        .await
    }

    async fn take_code(
        &self,
        code_hash: [u8; 32],
    ) -> Result<Option<(laissez_oauth::grant::AuthorizationCode, bool)>, Error> {
        self.write(move |c| oauth_rows::take_code(c, &code_hash, now()))
            .await
    }

    async fn create_refresh(
        &self,
        token_hash: [u8; 32],
        grant: laissez_oauth::grant::RefreshGrant,
    ) -> Result<(), Error> {
        self.write(move |c| oauth_rows::create_refresh(c, &token_hash, &grant))
            .await
    }

    async fn use_refresh(
        &self,
        token_hash: [u8; 32],
    ) -> Result<laissez_oauth::grant::RefreshUse, Error> {
        self.write(move |c| oauth_rows::use_refresh(c, &token_hash, now()))
            .await
    }

    async fn touch_grant(&self, user_id: &str, client_id: &str) -> Result<(), Error> {
        let (user, client) = (user_id.to_owned(), client_id.to_owned());
        self.write(move |c| oauth_rows::touch_grant(c, &user, &client, now()))
            .await
    }

    async fn connected_apps(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<laissez_oauth::grant::ConnectedApp>, Error> {
        let user = user_id.map(str::to_owned);
        self.read(move |c| oauth_rows::connected_apps(c, user.as_deref()))
            .await
    }

    async fn disconnect(
        &self,
        user_id: &str,
        client_id: &str,
        audit: AuditEvent,
    ) -> Result<bool, Error> {
        let (user, client) = (user_id.to_owned(), client_id.to_owned());
        self.write(move |c| {
            let was = oauth_rows::disconnect(c, &user, &client, now_ms())?;
            rows::append_audit(c, audit, now())?;
            Ok(was)
        })
        .await
    }

    async fn disconnected_since(
        &self,
        user_id: &str,
        client_id: &str,
        issued_ms: i64,
    ) -> Result<bool, Error> {
        let (user, client) = (user_id.to_owned(), client_id.to_owned());
        self.read(move |c| oauth_rows::disconnected_since(c, &user, &client, issued_ms))
            .await
    }

    async fn revoked_grants(&self) -> Result<Vec<(String, String, i64)>, Error> {
        self.read(oauth_rows::revoked_grants).await
    }

    async fn deleted_clients(&self) -> Result<Vec<String>, Error> {
        // Access tokens live minutes; a day of deletions covers every one still valid.
        self.read(|c| oauth_rows::deleted_clients(c, now() - 86_400))
            .await
    }

    async fn peek_code(
        &self,
        code_hash: [u8; 32],
    ) -> Result<Option<(laissez_oauth::grant::AuthorizationCode, bool)>, Error> {
        self.lookup(move |c| oauth_rows::peek_code(c, &code_hash))
    }

    async fn redeem_code(
        &self,
        code_hash: [u8; 32],
        refresh: Option<([u8; 32], laissez_oauth::grant::RefreshGrant)>,
        audit: AuditEvent,
    ) -> Result<Redemption, Error> {
        self.write(move |c| {
            let Some((code, _)) = oauth_rows::peek_code(c, &code_hash)? else {
                return Ok(Redemption::Replayed);
            };
            if !oauth_rows::redeem_code(c, &code_hash, now())? {
                return Ok(Redemption::Replayed);
            }
            match &refresh {
                Some((hash, grant)) => oauth_rows::create_refresh(c, hash, grant)?,
                None => oauth_rows::touch_grant(c, &code.user_id, &code.client_id, now())?,
            }
            oauth_rows::touch_client(c, &code.client_id, now())?;
            rows::append_audit(c, audit, now())?;
            Ok(Redemption::Spent)
        })
        .await
    }

    async fn peek_refresh(
        &self,
        token_hash: [u8; 32],
    ) -> Result<laissez_oauth::grant::RefreshUse, Error> {
        self.lookup(move |c| oauth_rows::peek_refresh(c, &token_hash, now()))
    }

    async fn rotate_refresh(
        &self,
        token_hash: [u8; 32],
        next_hash: [u8; 32],
        next: laissez_oauth::grant::RefreshGrant,
        audit: AuditEvent,
    ) -> Result<Redemption, Error> {
        self.write(move |c| {
            if !oauth_rows::rotate_refresh(c, &token_hash, &next_hash, &next, now())? {
                // Spent first: the same answer as a replay, the family ends.
                oauth_rows::use_refresh(c, &token_hash, now())?;
                return Ok(Redemption::Replayed);
            }
            oauth_rows::touch_client(c, &next.client_id, now())?;
            rows::append_audit(c, audit, now())?;
            Ok(Redemption::Spent)
        })
        .await
    }

    async fn record_issuance(&self, client_id: &str, audit: AuditEvent) -> Result<(), Error> {
        let client = client_id.to_owned();
        self.mutate(audit, move |c| oauth_rows::touch_client(c, &client, now()))
            .await
    }

    async fn expire_unused_clients(&self, before: i64) -> Result<Vec<String>, Error> {
        self.write(move |c| {
            let ids = oauth_rows::unused_dynamic_clients(c, before)?;
            for id in &ids {
                rows::delete_client(c, id, now())?;
            }
            if !ids.is_empty() {
                let audit = AuditEvent::success(
                    &[],
                    "oauth.client.expire",
                    format!("{} clients", ids.len()),
                )
                .with_detail(serde_json::json!({"clients": ids, "registered_before": before}));
                rows::append_audit(c, audit, now())?;
            }
            Ok(ids)
        })
        .await
    }

    async fn revoke_refresh(
        &self,
        token_hash: [u8; 32],
        client_id: &str,
        audit: AuditEvent,
    ) -> Result<bool, Error> {
        let client = client_id.to_owned();
        self.write(move |c| {
            let found = oauth_rows::revoke_refresh(c, &token_hash, &client, now())?;
            if found {
                rows::append_audit(c, audit, now())?;
            }
            Ok(found)
        })
        .await
    }

    async fn record_leaks(
        &self,
        reports: Vec<(String, LeakReport)>,
        signature: Option<[u8; 32]>,
        notify: Vec<String>,
        audit: Vec<AuditEvent>,
    ) -> Result<Vec<(LeakAction, Option<Incident>)>, Error> {
        self.write(move |c| {
            let now = now();
            if let Some(signature) = &signature
                && !leak_rows::remember_signature(c, signature, now)?
            {
                return Err(Error::Conflict(
                    "this signed report was received before (a replay); nothing was changed".into(),
                ));
            }
            let revoke_private = rows::settings(c)?.revoke_private_leaks;
            let mut outcomes = Vec::with_capacity(reports.len());
            for ((incident_id, report), event) in reports.iter().zip(audit) {
                let (action, incident) =
                    leak_rows::record(c, report, incident_id, revoke_private, &notify, now)?;
                if incident.is_some() {
                    let mut event = event;
                    event.detail["action"] = serde_json::Value::String(action.as_str().into());
                    if let Some(incident) = &incident {
                        event.detail["credential_id"] = serde_json::json!(incident.credential_id);
                        event.detail["incident"] = serde_json::json!(incident.id);
                    }
                    rows::append_audit(c, event, now)?;
                }
                outcomes.push((action, incident));
            }
            Ok(outcomes)
        })
        .await
    }

    async fn token_statuses(&self, hashes: Vec<[u8; 32]>) -> Result<Vec<TokenStatus>, Error> {
        self.read(move |c| {
            let now = now();
            hashes
                .iter()
                .map(|hash| leak_rows::status(c, hash, now))
                .collect()
        })
        .await
    }

    async fn incidents(
        &self,
        limit: usize,
        before: Option<(i64, String)>,
    ) -> Result<Vec<Incident>, Error> {
        self.read(move |c| leak_rows::incidents(c, limit, before))
            .await
    }

    async fn incident(&self, id: &str) -> Result<Option<Incident>, Error> {
        let id = id.to_owned();
        self.read(move |c| leak_rows::incident(c, &id)).await
    }

    async fn due_notifications(&self, limit: usize) -> Result<Vec<Notification>, Error> {
        self.read(move |c| leak_rows::due_notifications(c, now(), limit))
            .await
    }

    async fn finish_notification(&self, id: &str, error: Option<String>) -> Result<(), Error> {
        let id = id.to_owned();
        self.write(move |c| {
            leak_rows::finish_notification(
                c,
                &id,
                error.as_deref(),
                crate::MAX_NOTIFICATION_ATTEMPTS,
                now(),
            )
        })
        .await
    }

    async fn set_email(
        &self,
        principal_id: &str,
        email: Option<String>,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let id = principal_id.to_owned();
        self.mutate(audit, move |c| {
            leak_rows::set_email(c, &id, email.as_deref())
        })
        .await
    }

    async fn email(&self, principal_id: &str) -> Result<Option<String>, Error> {
        let id = principal_id.to_owned();
        self.lookup(move |c| leak_rows::email(c, &id))
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, Error> {
        let key = format!("x.{key}");
        self.lookup(|c| {
            self.inner.config.setting(c, &key, |c| {
                let mut stmt = c.prepare_cached("SELECT value FROM settings WHERE key = ?1")?;
                Ok(stmt.query_row([&key], |r| r.get(0)).optional()?)
            })
        })
    }

    async fn set_setting(&self, key: &str, value: String, audit: AuditEvent) -> Result<(), Error> {
        let key = format!("x.{key}");
        self.mutate(audit, move |c| {
            exec(
                c,
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn next_task_seq(&self) -> Result<i64, Error> {
        Ok(self.inner.task_seq.fetch_add(1, Ordering::Relaxed) + 1)
    }

    async fn create_task(
        &self,
        task: TaskRecord,
        token_hash: Option<[u8; 32]>,
        approval: Option<ApprovalRecord>,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        self.mutate(audit, move |c| {
            task_rows::insert(c, &task, token_hash.as_ref(), approval.as_ref())
        })
        .await
    }

    async fn task(&self, id: &str) -> Result<Option<TaskRecord>, Error> {
        let id = id.to_owned();
        self.lookup(move |c| task_rows::by_id(c, &id))
    }

    async fn task_by_token(
        &self,
        token_hash: [u8; 32],
        now: i64,
    ) -> Result<Option<(TaskRecord, bool)>, Error> {
        self.lookup(move |c| {
            let Some(task) = task_rows::by_token(c, &token_hash)? else {
                return Ok(None);
            };
            let live = task_rows::lineage_live(c, &task, now)?;
            Ok(Some((task, live)))
        })
    }

    async fn task_live(&self, id: &str, now: i64) -> Result<bool, Error> {
        let id = id.to_owned();
        self.lookup(move |c| match task_rows::by_id(c, &id)? {
            Some(task) => task_rows::lineage_live(c, &task, now),
            None => Ok(false),
        })
    }

    async fn end_task(
        &self,
        id: &str,
        state: TaskState,
        mut audit: AuditEvent,
    ) -> Result<(bool, Vec<String>), Error> {
        let id = id.to_owned();
        self.write(move |c| {
            let (already, ended) = task_rows::end(c, &id, state, now())?;
            if let Some(detail) = audit.detail.as_object_mut() {
                detail.insert("ended".into(), serde_json::json!(ended));
                detail.insert("already_ended".into(), serde_json::json!(already));
            }
            rows::append_audit(c, audit, now())?;
            Ok((already, ended))
        })
        .await
    }

    async fn tasks(&self, filter: TaskFilter) -> Result<Vec<TaskRecord>, Error> {
        self.read(move |c| task_rows::list(c, &filter)).await
    }

    async fn ended_tasks(&self) -> Result<Vec<String>, Error> {
        self.read(|c| task_rows::ended_unexpired(c, now())).await
    }

    async fn revocations(&self) -> Result<crate::Revocations, Error> {
        self.read(|c| {
            let now = now();
            Ok(crate::Revocations {
                access_tokens: rows::revoked_access_tokens(c, now)?,
                grants: oauth_rows::revoked_grants(c)?,
                inactive_principals: oauth_rows::suspended_principal_ids(c)?,
                // As `deleted_clients`: a day of deletions covers every token still valid.
                deleted_clients: oauth_rows::deleted_clients(c, now - 86_400)?,
                ended_tasks: task_rows::ended_unexpired(c, now)?,
            })
        })
        .await
    }

    async fn prune_tasks(&self, before: i64) -> Result<usize, Error> {
        self.write_queued(move |c| task_rows::prune(c, before))
            .await
    }

    async fn approval(&self, id: &str) -> Result<Option<(TaskRecord, ApprovalRecord)>, Error> {
        let id = id.to_owned();
        self.lookup(move |c| task_rows::approval(c, &id))
    }

    async fn approvals(
        &self,
        agents: Option<Vec<String>>,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<(TaskRecord, ApprovalRecord)>, Error> {
        self.read(move |c| task_rows::approvals(c, agents.as_deref(), pending_only, limit))
            .await
    }

    async fn decide_approval(
        &self,
        id: &str,
        decision: Decision,
        by: &str,
        audit: AuditEvent,
    ) -> Result<TaskRecord, Error> {
        let (id, by) = (id.to_owned(), by.to_owned());
        self.write(move |c| {
            let task = task_rows::decide(c, &id, &decision, &by, now())?;
            rows::append_audit(c, audit, now())?;
            Ok(task)
        })
        .await
    }

    async fn poll_approval(&self, id: &str, interval_ms: i64) -> Result<Poll, Error> {
        let id = id.to_owned();
        self.write(move |c| task_rows::poll(c, &id, now_ms(), interval_ms))
            .await
    }

    async fn issue_approved_task(
        &self,
        id: &str,
        token_hash: [u8; 32],
        issued_at: i64,
        expires_at: i64,
        audit: AuditEvent,
    ) -> Result<(), Error> {
        let id = id.to_owned();
        self.mutate(audit, move |c| {
            task_rows::issue_approved(c, &id, &token_hash, issued_at, expires_at)
        })
        .await
    }
}
