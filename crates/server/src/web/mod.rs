//! Server-rendered pages for people: login and consent. Plain HTML forms
//! that work without JavaScript, every value escaped, every state-changing
//! form protected by a CSRF token.

pub mod account;
pub mod federation;
pub mod password;
pub mod session;
pub mod throttle;
pub mod views;
