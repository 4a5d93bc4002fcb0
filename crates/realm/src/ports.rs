//! The host side of `imp::ports`: imps open MIDI ports through the table
//! the host hands them; the daemon installs the backend that serves them.

use imp::ports::PortSpec;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

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

/// Ports the imps hold open, with what they were opened for, and the
/// closes held back while a [`Hold`] lasts.
#[derive(Default)]
struct Book {
    open: BTreeMap<u64, (usize, PortSpec)>,
    holds: usize,
    held: Vec<u64>,
}

static BOOK: Mutex<Book> = Mutex::new(Book {
    open: BTreeMap::new(),
    holds: 0,
    held: Vec::new(),
});

fn book() -> std::sync::MutexGuard<'static, Book> {
    // The book stays consistent across a panic (every change is one step).
    BOOK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens a port for the imp in engine slot `slot`. While a [`Hold`] lasts,
/// a port that the same slot closed during the hold with the very same
/// spec is handed back instead (the port never closes: no gap, no event
/// lost, the port's note ledger kept). Control thread.
pub fn open(slot: usize, imp: &str, spec: &PortSpec) -> Result<u64, PortError> {
    let service =
        service().ok_or_else(|| PortError::Invalid("this process has no MIDI backend".into()))?;
    // A held port of this slot and direction that the new one replaces.
    let mut replaced = None;
    {
        let mut book = book();
        let held = book.held.clone();
        for id in held {
            let Some((s, open_spec)) = book.open.get(&id) else {
                continue;
            };
            if *s != slot || open_spec.direction != spec.direction {
                continue;
            }
            if open_spec == spec {
                book.held.retain(|h| *h != id);
                return Ok(id);
            }
            let same_name = open_spec.name == spec.name;
            book.held.retain(|h| *h != id);
            if same_name {
                // Same own port name, another peer: the old one must go
                // first so that the name is free.
                book.open.remove(&id);
                service.close(id);
            } else {
                replaced = Some(id);
            }
        }
    }
    let id = match service.open(slot, imp, spec) {
        Ok(id) => id,
        Err(e) => {
            // The old one closes when the hold ends, as it would have.
            if let Some(old) = replaced {
                book().held.push(old);
            }
            return Err(e);
        }
    };
    book().open.insert(id, (slot, spec.clone()));
    // Right after the new port is in place, the old one closes (ending
    // what sounds on it): at most one cycle has both.
    if let Some(old) = replaced {
        book().open.remove(&old);
        service.close(old);
    }
    Ok(id)
}

/// Closes a port; while a [`Hold`] lasts, the close waits for its end.
/// Control thread.
pub fn close(id: u64) {
    let mut book = book();
    if book.holds > 0 {
        if book.open.contains_key(&id) && !book.held.contains(&id) {
            book.held.push(id);
        }
        return;
    }
    book.open.remove(&id);
    drop(book);
    if let Some(service) = service() {
        service.close(id);
    }
}

/// True while port `id` and what it is connected to are there.
pub fn alive(id: u64) -> bool {
    service().is_some_and(|s| s.alive(id))
}

/// Holds port closes back while it lives: the realm takes one around a
/// respawn or reconfiguration, so that the new instance of a port imp
/// takes over the old instance's open port (same spec), and a port that
/// really goes closes only after the swap. Control thread.
#[must_use = "the hold ends when this value is dropped"]
pub struct Hold(());

/// Starts a [`Hold`].
pub fn hold() -> Hold {
    book().holds += 1;
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        let released = {
            let mut book = book();
            book.holds -= 1;
            if book.holds > 0 {
                return;
            }
            let held = std::mem::take(&mut book.held);
            for id in &held {
                book.open.remove(id);
            }
            held
        };
        if let Some(service) = service() {
            for id in released {
                service.close(id);
            }
        }
    }
}
