//! Server-rendered pages for people: login, consent, the account page and
//! the web console ([`console`]). Plain HTML forms
//! that work without JavaScript, every value escaped, every state-changing
//! form protected by a CSRF token.

pub mod account;
pub mod console;
pub mod federation;
pub mod password;
pub mod session;
pub mod throttle;
pub mod views;
