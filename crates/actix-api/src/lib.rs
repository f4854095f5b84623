//! The REST adapter: actix-web routes over the application's use cases.
//!
//! Status codes and the JSON error envelope are decided here and nowhere else.

pub mod auth;
pub mod dto;
pub mod error;
pub mod middleware;
