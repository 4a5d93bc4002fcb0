//! Running impresario as a service: the systemd unit, readiness and watchdog.

pub mod notify;
pub mod unit;
