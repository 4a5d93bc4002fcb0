//! Stamps the library with its build id (see `imp-build`).
fn main() {
    imp_build::stamp()
}
