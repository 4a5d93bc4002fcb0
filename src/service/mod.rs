//! Running impresario as a service: systemd readiness and watchdog.

pub mod notify;
