//! Device parameter snapshots in a zone: recorded, refused, kept in
//! presets and the vault, never in the bard's configuration.

use enchantment::*;
use serde_json::json;

fn two_zones() -> Enchantment {
    let mut e = Enchantment::default();
    e.set("zones", "lower, upper").unwrap();
    e
}

#[test]
fn a_param_is_recorded_in_its_zone_and_get_shows_it() {
    let mut e = two_zones();
    let c = e.set_param("lower", "microfreak", 23, 64).unwrap();
    assert_eq!(c.key, "lower.params.microfreak.23");
    assert_eq!((c.old, c.new), (json!(null), json!(64)));
    let c = e.set_param("1", "MicroFreak", 23, 70).unwrap();
    assert_eq!(
        (c.old, c.new),
        (json!(64), json!(70)),
        "by number, any case"
    );
    e.set_param("lower", "microfreak", 105, 3).unwrap();
    e.set_param("lower", "microfreak", 5, 0).unwrap();
    let lower = e.get(Some("lower")).unwrap();
    assert_eq!(
        lower["params"],
        json!({"microfreak": {"5": 0, "23": 70, "105": 3}})
    );
    assert_eq!(e.get(Some("upper")).unwrap()["params"], json!({}));
    // The whole state shows it per zone too.
    assert_eq!(
        e.get(None).unwrap()["zones"][0]["params"]["microfreak"]["23"],
        70
    );
}

#[test]
fn keys_are_written_in_numeric_order() {
    let mut e = Enchantment::default();
    for cc in [105, 5, 23, 9] {
        e.set_param("main", "microfreak", cc, 1).unwrap();
    }
    let text = e.to_json();
    let at = |k: &str| text.find(&format!("\"{k}\": 1")).unwrap();
    assert!(at("5") < at("9") && at("9") < at("23") && at("23") < at("105"));
}

#[test]
fn refusals_say_what_is_allowed_and_change_nothing() {
    let mut e = two_zones();
    let before = e.clone();
    let cases: &[(&str, &str, i64, i64, &str)] = &[
        ("lower", "microfreak", 120, 1, "lower.params.microfreak.120 = 1: the controller number is 0..=119 (120..=127 are channel mode messages, no parameters)"),
        ("lower", "microfreak", -1, 1, "lower.params.microfreak.-1 = 1: the controller number is 0..=119"),
        ("lower", "microfreak", 23, 128, "lower.params.microfreak.23 = 128: the value is 0..=127"),
        ("lower", "micro freak", 23, 1, "lower.params.micro freak = 1: a device name starts with a-z"),
        ("lower", "", 23, 1, "lower.params. = 1: a device name"),
        ("middle", "microfreak", 23, 1, "unknown zone \"middle\": zones are lower, upper"),
    ];
    for (zone, device, cc, value, message) in cases {
        let err = e.set_param(zone, device, *cc, *value).unwrap_err();
        assert!(
            err.to_string().starts_with(message),
            "{zone} {device} {cc} {value}: {err}"
        );
    }
    for d in 0..MAX_PARAM_DEVICES {
        e.set_param("upper", &format!("synth{d}"), 1, 1).unwrap();
    }
    let err = e.set_param("upper", "one_more", 1, 1).unwrap_err();
    assert!(err.to_string().contains("at most 16 devices"), "{err}");
    e.set_param("upper", "synth0", 2, 2).unwrap();
    let mut back = e.clone();
    back.zones[1] = before.zones[1].clone();
    assert_eq!(back, before, "only upper changed");
}

#[test]
fn recording_a_param_leaves_the_bard_alone() {
    let mut e = two_zones();
    e.set("lower.program", "5").unwrap();
    let before = e.clone();
    e.set_param("lower", "microfreak", 23, 64).unwrap();
    assert_eq!(e.bard_config(), before.bard_config());
    assert!(e.program_messages(Some(&before)).is_empty());
    assert_eq!(e.tempo(), before.tempo());
}

#[test]
fn presets_save_and_recall_the_snapshot() {
    let mut e = two_zones();
    e.set_param("lower", "microfreak", 23, 64).unwrap();
    e.set_param("lower", "microfreak", 83, 10).unwrap();
    e.save_preset("lower", 2).unwrap();
    e.set_param("lower", "microfreak", 23, 100).unwrap();
    e.set_param("lower", "microfreak", 9, 30).unwrap();
    let c = e.recall_preset("lower", 2).unwrap();
    assert_eq!(c.new["params"], json!({"microfreak": {"23": 64, "83": 10}}));
    assert_eq!(
        e.get(Some("lower")).unwrap()["params"]["microfreak"],
        json!({"23": 64, "83": 10}),
        "the whole snapshot is the preset's: cc 9 was not in it"
    );
}

#[test]
fn the_vault_keeps_params_and_older_vaults_load() {
    let mut e = two_zones();
    e.set_param("upper", "microfreak", 23, 64).unwrap();
    e.set_param("upper", "microfreak", 2, 127).unwrap();
    e.save_preset("upper", 7).unwrap();
    let back = Enchantment::from_json(&e.to_json()).unwrap();
    assert_eq!(back, e);

    // A vault written before params existed: no `params` anywhere.
    let mut old: serde_json::Value = serde_json::from_str(&two_zones().to_json()).unwrap();
    for z in old["zones"].as_array_mut().unwrap() {
        z.as_object_mut().unwrap().remove("params");
    }
    assert!(!old.to_string().contains("params"));
    let loaded = Enchantment::from_value(old).unwrap();
    assert_eq!(loaded, two_zones());
}

#[test]
fn bad_params_in_a_vault_are_refused_loudly() {
    let mut v: serde_json::Value = serde_json::from_str(&two_zones().to_json()).unwrap();
    v["zones"][0]["params"] = json!({"microfreak": {"123": 1}});
    let err = Enchantment::from_value(v.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains("zone lower: params.microfreak.123 = 1"),
        "{err}"
    );
    v["zones"][0]["params"] = json!({"microfreak": {"cutoff": 1}});
    let err = Enchantment::from_value(v.clone()).unwrap_err();
    assert!(err.to_string().contains("not a controller number"), "{err}");
    v["zones"][0]["params"] = json!({"Micro Freak": {"23": 1}});
    let err = Enchantment::from_value(v).unwrap_err();
    assert!(err.to_string().contains("a device name"), "{err}");
}
