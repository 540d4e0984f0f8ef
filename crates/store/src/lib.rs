//! Where Laissez keeps its state: the [`Store`] interface the server talks to,
//! and its embedded SQLite backend.
//!
//! The interface is domain-level: each mutation takes the [`AuditEvent`] that
//! records it, and a backend commits both in one transaction, so there is
//! never a change without its audit record or the other way round. Every
//! acknowledged write is durable before the call returns. The SQL is kept
//! portable so that a PostgreSQL backend can implement the same interface.

mod error;
pub mod sqlite;
pub mod task;

use async_trait::async_trait;
use laissez_core::audit::{AuditEvent, AuditRecord, Verification};
use laissez_core::credential::{Credential, Settings};
use laissez_core::leak::{Incident, LeakAction, LeakReport};
use laissez_core::{Name, Policy, PolicySet, Principal, Role, Status, UnixTime};
use laissez_oauth::client::Client;
use laissez_oauth::grant::{AuthorizationCode, ConnectedApp, RefreshGrant, RefreshUse};

pub use error::Error;
pub use sqlite::SqliteStore;

/// A credential together with the stored hash it was found by, so the caller
/// can compare the hash in constant time.
#[derive(Clone, Debug)]
pub struct StoredCredential {
    /// The credential's metadata.
    pub credential: Credential,
    /// SHA-256 of its secret.
    pub secret_hash: [u8; 32],
}

/// Everything needed to authorize a request made with one credential, read in
/// one consistent snapshot.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The credential presented.
    pub stored: StoredCredential,
    /// The delegation chain, human first, ending with the credential's principal.
    pub chain: Vec<Principal>,
}

/// What the revocation feed serves (see [`Store::revocations`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocations {
    /// Revoked access tokens that have not expired ([`Store::revoked_access_tokens`]).
    pub access_tokens: Vec<String>,
    /// Disconnected grants ([`Store::revoked_grants`]).
    pub grants: Vec<(String, String, i64)>,
    /// Principals that may not act ([`Store::inactive_principal_ids`]).
    pub inactive_principals: Vec<String>,
    /// Recently deleted clients ([`Store::deleted_clients`]).
    pub deleted_clients: Vec<String>,
    /// Ended, unexpired tasks ([`Store::ended_tasks`]).
    pub ended_tasks: Vec<String>,
}

/// A new secret for an existing credential.
#[derive(Clone, Debug)]
pub struct Rolled {
    /// SHA-256 of the secret being replaced: the roll happens only if it is
    /// still the credential's secret (compare and swap), else
    /// [`Error::Conflict`].
    pub replaces: [u8; 32],
    /// SHA-256 of the new secret.
    pub secret_hash: [u8; 32],
    /// The new secret's last four characters.
    pub last4: String,
    /// When the rolled credential was created.
    pub created_at: UnixTime,
    /// When it expires.
    pub expires_at: Option<UnixTime>,
}

/// The storage interface. Lookups return `Ok(None)` for absent rows; mutations
/// of absent rows return [`Error::NotFound`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the store has been bootstrapped (its first admin exists).
    async fn is_bootstrapped(&self) -> Result<bool, Error>;

    /// Creates the first admin user, its policy and its credential, once.
    /// Returns `false` and changes nothing if the store is already bootstrapped.
    async fn bootstrap(
        &self,
        admin: Principal,
        policy: Policy,
        credential: Credential,
        secret_hash: [u8; 32],
        audit: AuditEvent,
    ) -> Result<bool, Error>;

    /// Adds a principal. Names are unique across all principals.
    async fn create_principal(&self, principal: Principal, audit: AuditEvent) -> Result<(), Error>;

    /// The principal with this id or, failing that, this name.
    async fn principal(&self, id_or_name: &str) -> Result<Option<Principal>, Error>;

    /// Every principal, oldest first.
    async fn principals(&self) -> Result<Vec<Principal>, Error>;

    /// The ids of principals that may not act (for the revocation feed):
    /// inactive ones and everything an inactive principal owns or parents,
    /// at any depth.
    async fn inactive_principal_ids(&self) -> Result<Vec<String>, Error>;

    /// Activates or deactivates a principal.
    async fn set_principal_status(
        &self,
        id: &str,
        status: Status,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Gives the service or agent `id` a new human owner `owner_id`, with
    /// its audit record: its owner and delegating parent become the new
    /// owner, and so does the owner of the tasks it runs.
    async fn set_principal_owner(
        &self,
        id: &str,
        owner_id: &str,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// The delegation chain ending with the principal `id`, human first.
    async fn chain(&self, id: &str) -> Result<Vec<Principal>, Error>;

    /// Stores a new credential by the hash of its secret.
    async fn create_credential(
        &self,
        credential: Credential,
        secret_hash: [u8; 32],
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Finds the credential whose secret hashes to `secret_hash` with its chain.
    async fn caller(&self, secret_hash: &[u8; 32]) -> Result<Option<Caller>, Error>;

    /// The credential with this id.
    async fn credential(&self, id: &str) -> Result<Option<Credential>, Error>;

    /// The credential with this id, with the hash of its current secret.
    async fn stored_credential(&self, id: &str) -> Result<Option<StoredCredential>, Error>;

    /// Every credential, or those of one principal, newest first.
    async fn credentials(&self, principal_id: Option<&str>) -> Result<Vec<Credential>, Error>;

    /// Replaces a live credential's secret if it is still `rolled.replaces`;
    /// the old secret stops working. A concurrent roll that already replaced
    /// it makes this one [`Error::Conflict`].
    async fn roll_credential(
        &self,
        id: &str,
        rolled: Rolled,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Revokes a credential (idempotent: revoking twice keeps the first time).
    async fn revoke_credential(
        &self,
        id: &str,
        at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Records that a credential authenticated a request at `at`.
    async fn touch_credential(&self, id: &str, at: UnixTime) -> Result<(), Error>;

    /// Adds a role.
    async fn create_role(&self, role: Role, audit: AuditEvent) -> Result<(), Error>;

    /// Every role, by name.
    async fn roles(&self) -> Result<Vec<Role>, Error>;

    /// The role with this name.
    async fn role(&self, name: &Name) -> Result<Option<Role>, Error>;

    /// Adds a policy; the same principal, role and scope twice is a conflict.
    async fn create_policy(&self, policy: Policy, audit: AuditEvent) -> Result<(), Error>;

    /// Removes a policy.
    async fn delete_policy(&self, id: &str, audit: AuditEvent) -> Result<(), Error>;

    /// Every policy, or those of one principal.
    async fn policies(&self, principal_id: Option<&str>) -> Result<Vec<Policy>, Error>;

    /// Every role and the policies of the given principals, ready to evaluate.
    async fn policy_set(&self, principal_ids: &[String]) -> Result<PolicySet, Error>;

    /// The organization settings.
    async fn settings(&self) -> Result<Settings, Error>;

    /// Proves the store takes writes now: a write transaction begins and
    /// commits (for readiness probes; it changes nothing).
    async fn check_writable(&self) -> Result<(), Error>;

    /// Replaces the organization settings.
    async fn set_settings(&self, settings: Settings, audit: AuditEvent) -> Result<(), Error>;

    /// Appends an audit record for something that changed nothing (a denial,
    /// an authentication failure).
    async fn append_audit(&self, audit: AuditEvent) -> Result<(), Error>;

    /// Appends several records in one transaction (a gate's batch of decisions).
    async fn append_audit_batch(&self, events: Vec<AuditEvent>) -> Result<(), Error>;

    /// Up to `limit` audit records with `seq > after`, in order.
    async fn audit_records(&self, after: i64, limit: usize) -> Result<Vec<AuditRecord>, Error>;

    /// Walks the whole audit log and checks its hash chain.
    async fn verify_audit(&self) -> Result<Verification, Error>;

    /// The `seq` of the newest audit record (0 for an empty log).
    async fn audit_last_seq(&self) -> Result<i64, Error>;

    /// The `seq` of the last audit record the stream `sink` delivered (0 when
    /// it delivered none yet).
    async fn stream_cursor(&self, sink: &str) -> Result<i64, Error>;

    /// Moves the stream `sink`'s cursor from `from` to `to` if it still is at
    /// `from`; false (and nothing changed) when someone moved it meanwhile,
    /// such as an operator's replay while a batch was being delivered.
    async fn advance_stream_cursor(&self, sink: &str, from: i64, to: i64) -> Result<bool, Error>;

    /// Records that the stream `sink` delivered every record up to `seq`. An
    /// operator moving it (to replay from a sequence number) passes the
    /// audit record of that change; the stream's own progress passes none.
    async fn set_stream_cursor(
        &self,
        sink: &str,
        seq: i64,
        audit: Option<AuditEvent>,
    ) -> Result<(), Error>;

    /// Registers an OAuth client with the hash of its secret (confidential
    /// clients only) and of its RFC 7592 registration access token, if any.
    async fn create_client(
        &self,
        client: Client,
        secret_hash: Option<[u8; 32]>,
        registration_hash: Option<[u8; 32]>,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// The hash of a client's registration access token.
    async fn registration_token(&self, client_id: &str) -> Result<Option<[u8; 32]>, Error>;

    /// Replaces a client's metadata (its id, kind, owner and secret stay).
    async fn update_client(&self, client: Client, audit: AuditEvent) -> Result<(), Error>;

    /// Deletes a client: its registration ends and every grant to it is
    /// disconnected (refresh tokens die, access tokens go on the revocation feed).
    async fn delete_client(&self, client_id: &str, audit: AuditEvent) -> Result<(), Error>;

    /// Registers (or replaces) a protected resource.
    async fn put_resource(
        &self,
        resource: laissez_oauth::protected::ProtectedResource,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Every registered protected resource.
    async fn resources(&self) -> Result<Vec<laissez_oauth::protected::ProtectedResource>, Error>;

    /// Every registered OAuth client, oldest first.
    async fn clients(&self) -> Result<Vec<Client>, Error>;

    /// Up to `limit` registered clients, oldest first, registered after
    /// `after` (the `(created_at, client_id)` the previous page ended with).
    async fn clients_page(
        &self,
        after: Option<(UnixTime, String)>,
        limit: usize,
    ) -> Result<Vec<Client>, Error>;

    /// The OAuth client with this id, with its secret's hash.
    async fn client(&self, client_id: &str) -> Result<Option<(Client, Option<[u8; 32]>)>, Error>;

    /// Revokes an access token by its `jti` until it would have expired anyway.
    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Every revoked access token that has not expired yet (the revocation
    /// feed gates poll).
    async fn revoked_access_tokens(&self) -> Result<Vec<String>, Error>;

    /// Whether the access token with this `jti` was revoked.
    async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, Error>;

    /// Sets a user's password (a PHC-format argon2 hash, never the password).
    async fn set_password(
        &self,
        user_id: &str,
        phc: String,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// A user's password hash.
    async fn password(&self, user_id: &str) -> Result<Option<String>, Error>;

    /// Records a browser session by the hash of its cookie; the user's oldest
    /// sessions beyond [`MAX_SESSIONS`] end.
    async fn create_session(
        &self,
        id_hash: [u8; 32],
        user_id: &str,
        expires_at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// The live browser sessions of a user, newest first: (handle, expiry).
    async fn sessions(&self, user_id: &str) -> Result<Vec<(String, UnixTime)>, Error>;

    /// Ends one of a user's sessions by its handle (from [`Store::sessions`]),
    /// with its audit record. Returns whether it existed.
    async fn end_session(
        &self,
        user_id: &str,
        handle: &str,
        audit: AuditEvent,
    ) -> Result<bool, Error>;

    /// The local user an upstream OpenID Connect identity is linked to.
    async fn federated_user(&self, issuer: &str, subject: &str) -> Result<Option<String>, Error>;

    /// Links an upstream identity (issuer and subject) to a local user;
    /// [`Error::Conflict`] if that identity is already linked.
    async fn link_federated(
        &self,
        issuer: &str,
        subject: &str,
        user_id: &str,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Remembers a sign-in sent to the upstream provider, by the hash of its `state`.
    async fn create_login_state(
        &self,
        state_hash: [u8; 32],
        data: String,
        expires_at: UnixTime,
    ) -> Result<(), Error>;

    /// Takes a pending upstream sign-in (single use): its data if it exists and has not expired.
    async fn take_login_state(&self, state_hash: [u8; 32]) -> Result<Option<String>, Error>;

    /// The user and expiry of a browser session.
    async fn session(&self, id_hash: [u8; 32]) -> Result<Option<(String, UnixTime)>, Error>;

    /// Stores an authorization code by its hash and records the user's grant
    /// to the client, with the consent's audit record, in one transaction.
    async fn create_code(
        &self,
        code_hash: [u8; 32],
        code: AuthorizationCode,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// Notes that a user's grant to a client obtained tokens.
    async fn touch_grant(&self, user_id: &str, client_id: &str) -> Result<(), Error>;

    /// The applications users have let act for them (one user's, or everyone's).
    async fn connected_apps(&self, user_id: Option<&str>) -> Result<Vec<ConnectedApp>, Error>;

    /// Disconnects a client from a user: ends the grant, revokes its refresh
    /// tokens and its outstanding access tokens. Returns whether it was connected.
    async fn disconnect(
        &self,
        user_id: &str,
        client_id: &str,
        audit: AuditEvent,
    ) -> Result<bool, Error>;

    /// Whether the user disconnected the client (or the client was deleted)
    /// at or after `issued_ms` (milliseconds since the epoch).
    async fn disconnected_since(
        &self,
        user_id: &str,
        client_id: &str,
        issued_ms: i64,
    ) -> Result<bool, Error>;

    /// Every disconnect as (user, client, time in milliseconds), for the revocation feed.
    async fn revoked_grants(&self) -> Result<Vec<(String, String, i64)>, Error>;

    /// Clients deleted in the last day (for the revocation feed: every token
    /// they minted is refused; access tokens live minutes).
    async fn deleted_clients(&self) -> Result<Vec<String>, Error>;

    /// An authorization code and whether it was spent, changing nothing
    /// (the token endpoint checks everything before it spends one).
    async fn peek_code(
        &self,
        code_hash: [u8; 32],
    ) -> Result<Option<(AuthorizationCode, bool)>, Error>;

    /// Spends an authorization code and records the token issued for it in
    /// one transaction: the refresh token that starts its family (or, without
    /// one, the grant's use), the client's use and the issuance's audit
    /// record. Returns [`Redemption::Replayed`] and changes nothing if the code
    /// was spent first (by a racing request).
    async fn redeem_code(
        &self,
        code_hash: [u8; 32],
        refresh: Option<([u8; 32], RefreshGrant)>,
        audit: AuditEvent,
    ) -> Result<Redemption, Error>;

    /// What a refresh token is, changing nothing.
    async fn peek_refresh(&self, token_hash: [u8; 32]) -> Result<RefreshUse, Error>;

    /// Spends a live refresh token, stores its successor and the issuance's
    /// audit record in one transaction. If it was spent first (a racing
    /// request or a replay), its family is revoked and
    /// [`Redemption::Replayed`] returned.
    async fn rotate_refresh(
        &self,
        token_hash: [u8; 32],
        next_hash: [u8; 32],
        next: RefreshGrant,
        audit: AuditEvent,
    ) -> Result<Redemption, Error>;

    /// Records a token a client obtained with no grant to change (client
    /// credentials): its audit record and the client's use, durably.
    async fn record_issuance(&self, client_id: &str, audit: AuditEvent) -> Result<(), Error>;

    /// Deletes dynamically registered clients that never obtained a token
    /// and were registered before `before`; returns their ids.
    async fn expire_unused_clients(&self, before: UnixTime) -> Result<Vec<String>, Error>;

    /// Spends an authorization code: returns it and whether it had been spent before.
    async fn take_code(
        &self,
        code_hash: [u8; 32],
    ) -> Result<Option<(AuthorizationCode, bool)>, Error>;

    /// Stores a refresh token by its hash and notes, in the same transaction,
    /// that its grant was used (at the token's `issued_at`).
    async fn create_refresh(&self, token_hash: [u8; 32], grant: RefreshGrant) -> Result<(), Error>;

    /// Spends a refresh token; a reused one revokes its whole family in the same transaction.
    async fn use_refresh(&self, token_hash: [u8; 32]) -> Result<RefreshUse, Error>;

    /// Revokes the family of a refresh token issued to `client_id` (RFC 7009).
    /// Returns whether there was such a token.
    async fn revoke_refresh(
        &self,
        token_hash: [u8; 32],
        client_id: &str,
        audit: AuditEvent,
    ) -> Result<bool, Error>;

    /// Records leak reports in one transaction: each token is looked up by
    /// hash in the table of its kind and revoked there when
    /// [`LeakAction::decide`](laissez_core::leak::LeakAction::decide) says
    /// so; each real one gets an incident, an audit record and a queued
    /// notification per channel in `notify`. A report whose `signature`
    /// (hash) was seen before is refused with [`Error::Conflict`] and
    /// changes nothing.
    async fn record_leaks(
        &self,
        reports: Vec<(String, LeakReport)>,
        signature: Option<[u8; 32]>,
        notify: Vec<String>,
        audit: Vec<AuditEvent>,
    ) -> Result<Vec<(LeakAction, Option<Incident>)>, Error>;

    /// Whether each hash names a live, revoked, expired or unknown token.
    async fn token_statuses(&self, hashes: Vec<[u8; 32]>) -> Result<Vec<TokenStatus>, Error>;

    /// Up to `limit` leak incidents, newest first, reported before `before`
    /// (the `(reported_at, id)` of the previous page's last one).
    async fn incidents(
        &self,
        limit: usize,
        before: Option<(UnixTime, String)>,
    ) -> Result<Vec<Incident>, Error>;

    /// One leak incident.
    async fn incident(&self, id: &str) -> Result<Option<Incident>, Error>;

    /// Notifications due for delivery.
    async fn due_notifications(&self, limit: usize) -> Result<Vec<Notification>, Error>;

    /// Queues hygiene digests, one per person, on `channels` (email only
    /// to people with an address), records `at` as the last digest's time,
    /// with the audit record, in one transaction.
    async fn queue_digests(
        &self,
        digests: Vec<Digest>,
        channels: Vec<String>,
        at: UnixTime,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// A queued hygiene digest.
    async fn digest(&self, id: &str) -> Result<Option<Digest>, Error>;

    /// When the last hygiene digest was queued.
    async fn last_digest_at(&self) -> Result<Option<UnixTime>, Error>;

    /// Records a delivery attempt: `error` is none on success.
    async fn finish_notification(&self, id: &str, error: Option<String>) -> Result<(), Error>;

    /// Sets (or clears) a principal's email address, for notifications.
    async fn set_email(
        &self,
        principal_id: &str,
        email: Option<String>,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// A principal's email address.
    async fn email(&self, principal_id: &str) -> Result<Option<String>, Error>;

    /// A named setting beyond [`Settings`] (JSON text), such as the task rules.
    async fn setting(&self, key: &str) -> Result<Option<String>, Error>;

    /// Stores a named setting, with its audit record.
    async fn set_setting(&self, key: &str, value: String, audit: AuditEvent) -> Result<(), Error>;

    /// A fresh task sequence number (the task's id is made from it before
    /// its row is written, so its token and audit record can name it).
    async fn next_task_seq(&self) -> Result<i64, Error>;

    /// Stores a new task (active with its token's hash, or pending with its
    /// approval) and its audit record.
    async fn create_task(
        &self,
        task: task::TaskRecord,
        token_hash: Option<[u8; 32]>,
        approval: Option<task::ApprovalRecord>,
        audit: AuditEvent,
    ) -> Result<(), Error>;

    /// The task with this id.
    async fn task(&self, id: &str) -> Result<Option<task::TaskRecord>, Error>;

    /// The task whose `lztt_` token hashes to `token_hash`, and whether it
    /// and every task above it are live at `now`.
    async fn task_by_token(
        &self,
        token_hash: [u8; 32],
        now: i64,
    ) -> Result<Option<(task::TaskRecord, bool)>, Error>;

    /// Whether a task and every task above it are live at `now`.
    async fn task_live(&self, id: &str, now: i64) -> Result<bool, Error>;

    /// Ends a task (taking `state`) and everything derived from it
    /// (`Revoked`), with the audit record, which gets `ended` (the ids ended
    /// now) in its detail. Returns whether it had already ended, and `ended`.
    async fn end_task(
        &self,
        id: &str,
        state: task::TaskState,
        audit: AuditEvent,
    ) -> Result<(bool, Vec<String>), Error>;

    /// A page of tasks, newest first.
    async fn tasks(&self, filter: task::TaskFilter) -> Result<Vec<task::TaskRecord>, Error>;

    /// Ids of tasks that ended before they expired and have not expired yet.
    async fn ended_tasks(&self) -> Result<Vec<String>, Error>;

    /// Everything the revocation feed serves. A backend should read it in
    /// one snapshot (the feed answers on the path of every revocation);
    /// this default reads each part on its own.
    async fn revocations(&self) -> Result<Revocations, Error> {
        Ok(Revocations {
            access_tokens: self.revoked_access_tokens().await?,
            grants: self.revoked_grants().await?,
            inactive_principals: self.inactive_principal_ids().await?,
            deleted_clients: self.deleted_clients().await?,
            ended_tasks: self.ended_tasks().await?,
        })
    }

    /// Removes tasks that expired before `before` from the hot tables
    /// (their audit records stay). Returns how many.
    async fn prune_tasks(&self, before: i64) -> Result<usize, Error>;

    /// One task's approval.
    async fn approval(
        &self,
        id: &str,
    ) -> Result<Option<(task::TaskRecord, task::ApprovalRecord)>, Error>;

    /// Approvals, newest first (of these agents only, when given).
    async fn approvals(
        &self,
        agents: Option<Vec<String>>,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<(task::TaskRecord, task::ApprovalRecord)>, Error>;

    /// Decides a pending approval, with its audit record; a decided, lapsed
    /// or ended one is a [`Error::Conflict`].
    async fn decide_approval(
        &self,
        id: &str,
        decision: task::Decision,
        by: &str,
        audit: AuditEvent,
    ) -> Result<task::TaskRecord, Error>;

    /// Records an agent's poll of its pending task and says what to answer.
    async fn poll_approval(&self, id: &str, interval_ms: i64) -> Result<task::Poll, Error>;

    /// Issues an approved task once (its token hash, issue time and expiry),
    /// with the audit record; a second issue is a [`Error::Conflict`].
    async fn issue_approved_task(
        &self,
        id: &str,
        token_hash: [u8; 32],
        issued_at: i64,
        expires_at: i64,
        audit: AuditEvent,
    ) -> Result<(), Error>;
}

/// What spending a code or refresh token found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// This request spent it.
    Spent,
    /// Someone spent it first.
    Replayed,
}

/// Whether a token is usable, for `laissez scan --verify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// Usable now.
    Live,
    /// Revoked (or, for a refresh token, spent).
    Revoked,
    /// Past its expiry.
    Expired,
    /// No such token.
    Unknown,
}

impl TokenStatus {
    /// The status as shown.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Live => "live",
            TokenStatus::Revoked => "revoked",
            TokenStatus::Expired => "expired",
            TokenStatus::Unknown => "unknown",
        }
    }
}

/// A notification waiting in the outbox.
#[derive(Clone, Debug)]
pub struct Notification {
    /// Its id.
    pub id: String,
    /// `webhook` or `email`.
    pub channel: String,
    /// What it tells of: a leak incident's id, a task's (`tsk_…`) waiting
    /// for its owner's approval, or a hygiene digest's (`dig_…`).
    pub incident_id: String,
    /// Attempts so far.
    pub attempts: i64,
}

/// A hygiene digest for one person: what they answer for that needs care.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    /// Its id (`dig_…`).
    pub id: String,
    /// The person it is for.
    pub owner_id: String,
    /// The findings ([`laissez_core::credential::Finding`]s, as JSON).
    pub findings: serde_json::Value,
    /// When it was made.
    pub created_at: UnixTime,
}

/// Live browser sessions per user at most; a new one ends the oldest.
pub const MAX_SESSIONS: usize = 20;

/// Attempts before a notification is abandoned (its failures stay recorded).
pub const MAX_NOTIFICATION_ATTEMPTS: i64 = 12;
