//! The host side of `imp::ports`: imps open MIDI ports through the table
//! the host hands them; the daemon installs the backend that serves them.

use imp::ports::PortSpec;
use std::sync::{Arc, OnceLock};

/// Why a port could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The device or peer port is absent; the imp stays frozen and is retried.
    #[error("{0}")]
    NotReady(String),
    /// The request cannot work (bad spec, name taken, no backend).
    #[error("{0}")]
    Invalid(String),
}

/// A MIDI backend's port management, called on the control thread.
pub trait PortService: Send + Sync {
    /// Opens a port for the imp whose RT part is in engine slot `slot`.
    fn open(&self, slot: usize, imp: &str, spec: &PortSpec) -> Result<u64, PortError>;
    /// Closes a port.
    fn close(&self, id: u64);
    /// True while the port and what it is connected to are there.
    fn alive(&self, id: u64) -> bool;
    /// The backend's name, for logs and status.
    fn backend(&self) -> &'static str;
}

static SERVICE: OnceLock<Arc<dyn PortService>> = OnceLock::new();

/// Installs the process's port service (once; later calls are ignored).
pub fn install(service: Arc<dyn PortService>) {
    let _ = SERVICE.set(service);
}

/// The installed port service.
pub fn service() -> Option<&'static Arc<dyn PortService>> {
    SERVICE.get()
}
