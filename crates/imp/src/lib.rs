//! # imp: writing an impresario imp
//!
//! An *imp* is a plugin library (a `cdylib` under `imps/`) that the realm
//! loads, freezes, hot-swaps and thaws while the music keeps playing. This
//! crate is everything an imp author needs:
//!
//! - implement [`Imp`] (the control part) and, if the imp touches events on
//!   the engine thread, [`RtPart`] (the real-time part);
//! - call [`export!`] once;
//! - add a `build.rs` with `fn main() { imp_build::stamp() }` so every build
//!   gets a new build id.
//!
//! You never write `unsafe` or `extern "C"`: the macro generates the C entry
//! table ([`abi::LibraryTable`]), catches every panic at the boundary, routes
//! the imp's allocations through the host (so the engine's allocation guard
//! sees them) and forwards its `tracing` events to the host's log.
//!
//! ```ignore
//! use imp::{CreateContext, Imp, ImpError, NoRt};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Config { greeting: String }
//!
//! struct Hello { config: Config, count: u64 }
//!
//! impl Imp for Hello {
//!     type Config = Config;
//!     type Frozen = u64;
//!     type Rt = NoRt;
//!     fn create(_: &CreateContext, config: Config, frozen: Option<u64>) -> Result<Self, ImpError> {
//!         Ok(Hello { config, count: frozen.unwrap_or(0) })
//!     }
//!     fn thaw(&mut self) -> Result<Option<NoRt>, ImpError> {
//!         tracing::info!("{}", self.config.greeting);
//!         Ok(None)
//!     }
//!     fn freeze(&mut self) -> u64 { self.count }
//!     imp::vault_field!(count);
//! }
//!
//! imp::export!(Hello);
//! ```
//!
//! Imps must not use thread-locals with destructors: the host never unloads
//! a library, but it does run imp code on threads it owns.
//!
//! SysEx (and any message longer than 3 bytes) reaches an RT part as an
//! [`RtEvent`] of kind [`event_kind::SYSEX`] whose
//! bytes live in engine-owned storage: read them with
//! [`BlockContext::sysex_bytes`], pass the event on with
//! [`EventWriter::push`], write a new one with [`EventWriter::push_sysex`].
//! Nothing is allocated and no `unsafe` is needed.

pub mod abi;
mod error;
#[doc(hidden)]
pub mod glue;
mod host;
mod log;
pub mod mail;
pub mod ports;
mod traits;

pub use abi::{
    event_kind, transport, BlockContext, RtEvent, ABI_VERSION, MAX_AUDIO_CHANNELS, TRANSIENT_BYTES,
};
pub use error::{ErrorKind, ImpError};
pub use host::HostAllocator;
pub use mail::{MailError, Messenger, RtOutbox, RtSender};
pub use traits::{AudioOut, CreateContext, EventWriter, Imp, NoRt, RtPart};

#[doc(hidden)]
pub use serde_json as __serde_json;

/// Exports an imp type as this library's entry point.
///
/// Generates the `impresario_imp_library` symbol, the library's global
/// allocator (which forwards to the host) and the entry table. Use it once
/// per library, at the crate root.
///
/// The `abi_version = ...` form exists for the host's own tests of
/// refusing mismatched libraries; imp authors never need it.
#[macro_export]
macro_rules! export {
    ($imp:ty) => {
        $crate::export!($imp, abi_version = $crate::ABI_VERSION);
    };
    ($imp:ty, abi_version = $version:expr) => {
        #[global_allocator]
        static __IMP_HOST_ALLOCATOR: $crate::HostAllocator = $crate::HostAllocator;

        /// Entry point the impresario host looks up.
        #[no_mangle]
        pub extern "C" fn impresario_imp_library() -> *const $crate::abi::LibraryTable {
            static TABLE: $crate::abi::LibraryTable = $crate::glue::table::<$imp>(
                env!("CARGO_PKG_NAME"),
                match option_env!("IMP_BUILD_ID") {
                    Some(id) => id,
                    None => concat!(env!("CARGO_PKG_VERSION"), "+unstamped"),
                },
                $version,
            );
            &TABLE
        }
    };
}

/// Implements [`Imp::get_vault_data`] and [`Imp::set_vault_data`] by
/// persisting one serde field of the imp. Use inside `impl Imp for ...`.
#[macro_export]
macro_rules! vault_field {
    ($field:ident) => {
        fn get_vault_data(&self) -> Option<$crate::__serde_json::Value> {
            $crate::__serde_json::to_value(&self.$field).ok()
        }

        fn set_vault_data(
            &mut self,
            data: $crate::__serde_json::Value,
        ) -> Result<(), $crate::ImpError> {
            self.$field = $crate::__serde_json::from_value(data)?;
            Ok(())
        }
    };
}
