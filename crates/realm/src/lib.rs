//! # realm: the running system
//!
//! The realm makes the set of live imps match `realm.toml`, all the time:
//! it loads imp libraries ([`loader`]), creates, thaws, freezes and destroys
//! imps, respawns them when their library is rebuilt ([`supervisor`]), keeps
//! their data in the vault, and wires their RT parts into the engine.

pub mod config;
pub mod diff;
mod host;
mod imp_state;
pub mod loader;
pub mod mail;
pub mod observer;
pub mod ports;

pub use config::{ConfigError, RealmConfig};
pub use loader::{CallError, ImpHandle, Library, LoadError};
pub mod control;
pub mod protocol;
pub mod status;
pub mod supervisor;
pub mod watch;

pub use host::set_sample_rate;
pub use observer::{LoopEvent, LoopObserver};
pub use protocol::{Reply, Request};
pub use supervisor::{Lifecycle, Message, Realm};
