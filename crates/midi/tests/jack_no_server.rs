//! JACK listing without a server: a clear typed error, no panic, no server
//! started (NO_START_SERVER). Its own test binary, because it sets
//! `JACK_DEFAULT_SERVER` for the process.

#[test]
fn no_server_is_a_clear_typed_error() {
    let name = format!("impresario-none-{}", std::process::id());
    std::env::set_var("JACK_DEFAULT_SERVER", &name);
    for result in [
        midi::jack_ports::list_ports(),
        midi::jack_ports::list_all_ports(),
    ] {
        match result {
            Err(e @ midi::MidiError::JackUnavailable { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("no JACK server running"), "{msg}");
                assert!(msg.contains(&name), "{msg}");
                assert!(msg.contains("alsa or loopback backend"), "{msg}");
            }
            other => panic!("expected JackUnavailable, got {other:?}"),
        }
    }
    // NO_START_SERVER: asking did not start one.
    let out = std::process::Command::new("jack_wait")
        .args(["-c"])
        .env("JACK_DEFAULT_SERVER", &name)
        .output()
        .expect("jack_wait is installed (apt-get install jackd2; `cargo xtask test` does)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not running"), "{text}");
}
