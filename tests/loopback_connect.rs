//! Loopback `connect` patterns bind to the port they match, as JACK and ALSA do.

mod common;
use common::*;

#[test]
fn a_connect_pattern_binds_to_the_port_it_matched() {
    let d = Daemon::start(
        &["midi_port", "monitor"],
        "[imps.send]\nlibrary = \"midi_port\"\nconfig = { direction = \"out\", name = \"MicroFreak Out\" }\n\
         [imps.recv]\nlibrary = \"midi_port\"\nconfig = { direction = \"in\", connect = \"freak\" }\n\
         [imps.watch]\nlibrary = \"monitor\"\nconfig = { log = false }\n\
         [[wires]]\nfrom = \"recv\"\nto = \"watch\"\n",
    );
    d.wait_for("both ports", |s| {
        imp_of(s, "send")["state"] == "thawed" && imp_of(s, "recv")["state"] == "thawed"
    });
    d.send("send", &["90", "40", "70"]);
    let s = d.wait_for("the note to come round", |s| {
        imp_of(s, "watch")["status"]["total"] == 1
    });
    assert_eq!(
        imp_of(&s, "watch")["status"]["last_event"],
        "note-on ch1 E4 vel 112"
    );
}
