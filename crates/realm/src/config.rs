//! `realm.toml`: which imps exist, how events flow between them, and the
//! realm's settings. Parsed and validated completely before anything
//! changes; an error names the file, line and column and says what to do.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// An invalid `realm.toml`, located in the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        } else {
            write!(f, "{}: {}", self.path.display(), self.message)
        }
    }
}

/// The MIDI backends `midi_backend` can name: the one list of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MidiBackend {
    /// JACK if a server runs, else ALSA if its sequencer opens, else loopback.
    Auto,
    /// JACK (the daemon does not start when no server runs).
    Jack,
    /// The ALSA sequencer (port imps wait while it is unavailable).
    Alsa,
    /// In-process ports only.
    Loopback,
}

impl MidiBackend {
    /// Every backend, with its name in `realm.toml`.
    pub const ALL: [(MidiBackend, &'static str); 4] = [
        (MidiBackend::Auto, "auto"),
        (MidiBackend::Jack, "jack"),
        (MidiBackend::Alsa, "alsa"),
        (MidiBackend::Loopback, "loopback"),
    ];

    /// The name in `realm.toml`.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(b, _)| *b == self)
            .map_or("auto", |(_, n)| n)
    }
}

impl<'de> Deserialize<'de> for MidiBackend {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        MidiBackend::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(b, _)| *b)
            .ok_or_else(|| {
                let names: Vec<String> = MidiBackend::ALL
                    .iter()
                    .map(|(_, n)| format!("\"{n}\""))
                    .collect();
                serde::de::Error::custom(format!(
                    "[realm] midi_backend = \"{name}\" is not a backend; use {}",
                    names.join(", ")
                ))
            })
    }
}

/// The realm's settings (the `[realm]` table). Paths are relative to the
/// directory of `realm.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the imp libraries (`lib<name>.so`) are; watched for new builds.
    pub library_dir: PathBuf,
    /// The vault file.
    pub vault: PathBuf,
    /// How many vault backups to keep.
    pub vault_backups: usize,
    /// Quiet time after a change before the vault is written, in ms.
    pub vault_debounce_ms: u64,
    /// The control socket `impresario status` talks to.
    pub socket: PathBuf,
    /// How often the realm compares itself with this file and polls imps, in ms.
    pub reconcile_ms: u64,
    /// How often frozen imps are retried (e.g. a device came back), in ms.
    pub thaw_retry_ms: u64,
    /// Quiet time after a library file changes before it is loaded, in ms.
    /// None by default: a file that is not complete yet is refused by the
    /// loader's ELF check and tried again on its next change.
    pub reload_debounce_ms: u64,
    /// Engine sample rate in Hz.
    pub sample_rate: u32,
    /// Engine block size in frames.
    pub block_size: u32,
    /// Engine tempo in BPM.
    pub tempo: f64,
    /// MIDI backend: `auto` (JACK if a server runs, else ALSA if it opens,
    /// else loopback), `jack`, `alsa`, `loopback`.
    pub midi_backend: MidiBackend,
    /// Name of impresario's JACK client.
    pub jack_client_name: String,
    /// The watched folder of TimeSeq scripts: every `*.json` in it plays as
    /// the imp `seq.<file stem>` (see [`RealmConfig::with_scripts`]).
    pub scripts_dir: PathBuf,
    /// Where the engine's audio goes: `auto` (JACK: impresario's own audio
    /// ports; ALSA: the `default` PCM device; loopback: nowhere), `none`
    /// (rendered, shown in `status`, not played), or an ALSA PCM device
    /// name for the `alsa` backend (e.g. `hw:1,0`).
    pub audio_output: String,
    /// JACK: connect impresario's audio ports to the system's playback
    /// ports when they exist.
    pub audio_connect: bool,
    /// Size in bytes of each of the engine's long-message (SysEx) arenas:
    /// the most SysEx bytes one cycle carries. A SysEx that does not fit is
    /// dropped whole and counted (`sysex_dropped` in `impresario status`).
    /// Takes effect at the next start.
    pub sysex_arena_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            library_dir: "target/release".into(),
            vault: "vault.json".into(),
            vault_backups: vault::DEFAULT_BACKUPS,
            vault_debounce_ms: 1000,
            socket: "impresario.sock".into(),
            reconcile_ms: 250,
            thaw_retry_ms: 2000,
            reload_debounce_ms: 0,
            sample_rate: 48_000,
            block_size: 64,
            tempo: 120.0,
            midi_backend: MidiBackend::Auto,
            jack_client_name: "impresario".into(),
            scripts_dir: "scripts".into(),
            audio_output: "auto".into(),
            audio_connect: true,
            sysex_arena_bytes: 64 * 1024,
        }
    }
}

/// One imp as declared.
#[derive(Clone, Debug, PartialEq)]
pub struct ImpSpec {
    /// The library (crate name under `imps/`).
    pub library: String,
    /// The `config` table, as JSON.
    pub config: serde_json::Value,
}

/// A wire as declared, by imp name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireSpec {
    /// Source imp.
    pub from: String,
    /// The source's numbered output.
    pub output: u8,
    /// Destination imp.
    pub to: String,
    /// The input number the events arrive on.
    pub input: u8,
}

/// Where an imp's parts are in the file (1-based line and column), for
/// errors found after parsing (an unknown library, a config the imp refuses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpLocation {
    /// The `library` value.
    pub library: (usize, usize),
    /// The `config` value, or the imp's table name when it has none.
    pub config: (usize, usize),
}

/// A validated realm.
#[derive(Clone, Debug, PartialEq)]
pub struct RealmConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Settings, with paths made absolute.
    pub settings: Settings,
    /// Imps by name.
    pub imps: BTreeMap<String, ImpSpec>,
    /// Wires in file order.
    pub wires: Vec<WireSpec>,
    /// Whether the file declares imps at all (an `[imps.<name>]` table, or
    /// `imps = {}` for a realm with none). A file that declares none (an
    /// empty or half-written file) never removes running imps.
    pub imps_declared: bool,
    /// Where each imp is declared.
    pub locations: BTreeMap<String, ImpLocation>,
    /// `[scripts.<stem>]` tables: wiring and mapping of the script
    /// `<stem>.json` in the scripts folder.
    pub scripts: BTreeMap<String, ScriptSpec>,
}

/// The library that plays TimeSeq scripts.
pub const SCRIPT_LIBRARY: &str = "timeseq_player";

/// The imp name of the script file `<stem>.json`.
pub fn script_imp(stem: &str) -> String {
    format!("seq.{stem}")
}

/// Whether `stem` (a file name without `.json`) can name a sequencer:
/// letters, digits, `_`, `-` and `.`.
pub fn valid_script_stem(stem: &str) -> bool {
    !stem.is_empty()
        && !stem.starts_with('.')
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// A `[scripts.<stem>]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptSpec {
    /// Imps the script's output 0 is wired to; `None`: to `synth` when the
    /// realm has an imp of that name.
    pub to: Option<Vec<String>>,
    /// Imps wired into the script's input 0 (MIDI in).
    pub from: Vec<String>,
    /// More wires from the script's numbered outputs: (output, imp, input).
    pub wires: Vec<(u8, String, u8)>,
    /// The rest of the table: the voltage↔MIDI mapping, checked by the
    /// player library.
    pub mapping: serde_json::Value,
    /// Where the table is (line, column).
    pub location: (usize, usize),
}

/// A script file that is live: its text and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveScript {
    /// The file.
    pub path: PathBuf,
    /// Its text (a valid script).
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    realm: Settings,
    #[serde(default)]
    imps: Option<BTreeMap<Spanned<String>, Spanned<RawImp>>>,
    #[serde(default)]
    wires: Vec<Spanned<RawWire>>,
    #[serde(default)]
    scripts: BTreeMap<Spanned<String>, Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImp {
    library: Spanned<String>,
    #[serde(default)]
    config: Option<Spanned<toml::Value>>,
}

/// The `[realm]` keys with where their values are, for range errors.
#[derive(Deserialize)]
struct SettingSpans {
    #[serde(default)]
    realm: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWire {
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(default)]
    output: u8,
    #[serde(default)]
    input: u8,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, col)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl ConfigError {
    /// An error at `(line, column)` of `path`.
    pub fn at(path: &Path, (line, column): (usize, usize), message: String) -> ConfigError {
        ConfigError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        }
    }
}

impl RealmConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<RealmConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the realm file: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// The control socket of the realm at `path`, found leniently: a realm
    /// file with an error elsewhere (an edit the daemon rejected) must not
    /// keep `impresario status` from reaching the daemon.
    pub fn socket_path(path: &Path) -> PathBuf {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let declared = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| socket_in(&text));
        base.join(declared.unwrap_or_else(|| Settings::default().socket))
    }

    /// Validates `text` as the contents of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<RealmConfig, ConfigError> {
        let err = |span: Option<Range<usize>>, message: String| {
            let (line, column) = span.map_or((0, 0), |s| line_col(text, s.start));
            ConfigError {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| err(e.span(), e.message().to_string()))?;
        let spans: SettingSpans =
            toml::from_str(text).map_err(|e| err(e.span(), e.message().to_string()))?;
        let at = |key: &str| spans.realm.get(key).map(|v| v.span());

        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut settings = raw.realm;
        for p in [
            &mut settings.library_dir,
            &mut settings.vault,
            &mut settings.socket,
            &mut settings.scripts_dir,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if settings.sample_rate < 8000 || settings.sample_rate > 384_000 {
            return Err(err(
                at("sample_rate"),
                format!(
                    "[realm] sample_rate = {} is out of range; use 8000..=384000",
                    settings.sample_rate
                ),
            ));
        }
        if settings.block_size == 0 || settings.block_size > 8192 {
            return Err(err(
                at("block_size"),
                format!(
                    "[realm] block_size = {} is out of range; use 1..=8192",
                    settings.block_size
                ),
            ));
        }
        if !(256..=16 * 1024 * 1024).contains(&settings.sysex_arena_bytes) {
            return Err(err(
                at("sysex_arena_bytes"),
                format!(
                    "[realm] sysex_arena_bytes = {} is out of range; use 256..=16777216",
                    settings.sysex_arena_bytes
                ),
            ));
        }
        if settings.audio_output.trim().is_empty() {
            return Err(err(
                at("audio_output"),
                "[realm] audio_output is empty; use \"auto\", \"none\" or an ALSA device name such as \"hw:1,0\"".into(),
            ));
        }
        for (key, value, max) in [
            ("reconcile_ms", settings.reconcile_ms, 60_000),
            ("thaw_retry_ms", settings.thaw_retry_ms, 3_600_000),
            ("vault_debounce_ms", settings.vault_debounce_ms, 3_600_000),
            ("reload_debounce_ms", settings.reload_debounce_ms, 60_000),
        ] {
            let min = u64::from(key == "reconcile_ms" || key == "thaw_retry_ms");
            if value < min || value > max {
                return Err(err(
                    at(key),
                    format!("[realm] {key} = {value} is out of range; use {min}..={max}"),
                ));
            }
        }
        if !(settings.tempo.is_finite() && (10.0..=999.0).contains(&settings.tempo)) {
            return Err(err(
                at("tempo"),
                format!(
                    "[realm] tempo = {} is out of range; use 10.0..=999.0",
                    settings.tempo
                ),
            ));
        }

        let imps_declared = raw.imps.is_some();
        let mut imps = BTreeMap::new();
        let mut locations = BTreeMap::new();
        for (name, imp) in raw.imps.unwrap_or_default() {
            if !valid_name(name.get_ref()) {
                return Err(err(
                    Some(name.span()),
                    format!(
                        "imp name `{}` may only use letters, digits, `_` and `-`",
                        name.get_ref()
                    ),
                ));
            }
            let imp = imp.into_inner();
            if !valid_name(imp.library.get_ref()) {
                return Err(err(
                    Some(imp.library.span()),
                    format!(
                        "library `{}` is not a crate name under imps/",
                        imp.library.get_ref()
                    ),
                ));
            }
            let location = ImpLocation {
                library: line_col(text, imp.library.span().start),
                config: line_col(
                    text,
                    imp.config
                        .as_ref()
                        .map_or(name.span().start, |c| c.span().start),
                ),
            };
            let config = match imp.config {
                Some(v) => serde_json::to_value(v.into_inner())
                    .map_err(|e| err(Some(name.span()), e.to_string()))?,
                None => serde_json::Value::Object(Default::default()),
            };
            locations.insert(name.get_ref().clone(), location);
            imps.insert(
                name.into_inner(),
                ImpSpec {
                    library: imp.library.into_inner(),
                    config,
                },
            );
        }

        let mut wires = Vec::new();
        for w in raw.wires {
            let span = w.span();
            let w = w.into_inner();
            for end in [&w.from, &w.to] {
                if !imps.contains_key(end.get_ref()) {
                    return Err(err(
                        Some(end.span()),
                        format!(
                            "wire names imp `{}`, which is not declared; add an [imps.{}] table or fix the name",
                            end.get_ref(),
                            end.get_ref()
                        ),
                    ));
                }
            }
            if w.from.get_ref() == w.to.get_ref() {
                return Err(err(
                    Some(span),
                    format!("wire from `{}` to itself: remove it", w.from.get_ref()),
                ));
            }
            wires.push((
                span,
                WireSpec {
                    from: w.from.into_inner(),
                    output: w.output,
                    to: w.to.into_inner(),
                    input: w.input,
                },
            ));
        }
        // A loop in the wiring would make events circle forever.
        if let Some(span) = find_loop(&imps, &wires) {
            return Err(err(
                Some(span),
                "this wire closes a loop (events would circle forever); remove it or another wire of the loop".into(),
            ));
        }
        let mut scripts = BTreeMap::new();
        for (stem, table) in raw.scripts {
            if !valid_script_stem(stem.get_ref()) {
                return Err(err(
                    Some(stem.span()),
                    format!(
                        "[scripts.{}]: a script name may only use letters, digits, `_`, `-` and `.`",
                        stem.get_ref()
                    ),
                ));
            }
            let location = line_col(text, stem.span().start);
            let span = table.span();
            let mut table = table.into_inner();
            let mut names = |key: &str| -> Result<Option<Vec<String>>, ConfigError> {
                let Some(v) = table.remove(key) else {
                    return Ok(None);
                };
                let list = match v {
                    toml::Value::String(s) => vec![s],
                    toml::Value::Array(a) => a
                        .into_iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<String>>>()
                        .ok_or_else(|| {
                            err(
                                Some(span.clone()),
                                format!(
                                    "[scripts.{}] {key}: give an imp name or a list of them",
                                    stem.get_ref()
                                ),
                            )
                        })?,
                    _ => {
                        return Err(err(
                            Some(span.clone()),
                            format!(
                                "[scripts.{}] {key}: give an imp name or a list of them",
                                stem.get_ref()
                            ),
                        ))
                    }
                };
                for n in &list {
                    if !imps.contains_key(n) {
                        return Err(err(
                            Some(span.clone()),
                            format!(
                                "[scripts.{}] {key} = \"{n}\": no imp of that name is declared",
                                stem.get_ref()
                            ),
                        ));
                    }
                }
                Ok(Some(list))
            };
            let to = names("to")?;
            let from = names("from")?.unwrap_or_default();
            let mut extra = Vec::new();
            if let Some(w) = table.remove("wires") {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct ScriptWire {
                    #[serde(default)]
                    output: u8,
                    to: String,
                    #[serde(default)]
                    input: u8,
                }
                let list: Vec<ScriptWire> = w.try_into().map_err(|e: toml::de::Error| {
                    err(
                        Some(span.clone()),
                        format!(
                            "[scripts.{}] wires: a list of {{ output = N, to = \"imp\", input = N }}: {}",
                            stem.get_ref(),
                            e.message()
                        ),
                    )
                })?;
                for w in list {
                    if !imps.contains_key(&w.to) {
                        return Err(err(
                            Some(span.clone()),
                            format!(
                                "[scripts.{}] wires: to = \"{}\": no imp of that name is declared",
                                stem.get_ref(),
                                w.to
                            ),
                        ));
                    }
                    extra.push((w.output, w.to, w.input));
                }
            }
            if let Some(n) = to
                .iter()
                .flatten()
                .chain(extra.iter().map(|w| &w.1))
                .find(|n| from.contains(n))
            {
                return Err(err(
                    Some(span),
                    format!(
                        "[scripts.{}]: `{n}` is both in `to` and `from`, a loop; remove one",
                        stem.get_ref()
                    ),
                ));
            }
            let mapping =
                serde_json::to_value(table).map_err(|e| err(Some(span), e.to_string()))?;
            scripts.insert(
                stem.into_inner(),
                ScriptSpec {
                    to,
                    from,
                    wires: extra,
                    mapping,
                    location,
                },
            );
        }
        Ok(RealmConfig {
            path: path.to_path_buf(),
            settings,
            imps,
            wires: wires.into_iter().map(|(_, w)| w).collect(),
            imps_declared,
            locations,
            scripts,
        })
    }

    /// This realm with one sequencer per live script: the imp
    /// `seq.<stem>` of library [`SCRIPT_LIBRARY`], its config
    /// `{script, file, mapping}`, its output 0 wired to the `to` imps of
    /// `[scripts.<stem>]` (default: `synth`, when there is one) and the
    /// `from` imps wired to its input 0. A script whose `from` wires would
    /// close a loop plays without them (said in the log).
    pub fn with_scripts(&self, live: &BTreeMap<String, LiveScript>) -> RealmConfig {
        let mut out = self.clone();
        for (stem, script) in live {
            let name = script_imp(stem);
            let spec = self.scripts.get(stem);
            let mapping = spec
                .map(|s| s.mapping.clone())
                .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
            out.imps.insert(
                name.clone(),
                ImpSpec {
                    library: SCRIPT_LIBRARY.into(),
                    config: serde_json::json!({
                        "script": script.text,
                        "file": script.path,
                        "mapping": mapping,
                    }),
                },
            );
            if let Some(s) = spec {
                out.locations.insert(
                    name.clone(),
                    ImpLocation {
                        library: s.location,
                        config: s.location,
                    },
                );
            }
            let to = match spec.and_then(|s| s.to.clone()) {
                Some(to) => to,
                None if self.imps.contains_key("synth") => vec!["synth".to_string()],
                None => Vec::new(),
            };
            for t in to {
                out.wires.push(WireSpec {
                    from: name.clone(),
                    output: 0,
                    to: t,
                    input: 0,
                });
            }
            for (output, t, input) in spec.map(|s| s.wires.clone()).unwrap_or_default() {
                out.wires.push(WireSpec {
                    from: name.clone(),
                    output,
                    to: t,
                    input,
                });
            }
            let before = out.wires.len();
            for f in spec.map(|s| s.from.clone()).unwrap_or_default() {
                out.wires.push(WireSpec {
                    from: f,
                    output: 0,
                    to: name.clone(),
                    input: 0,
                });
            }
            let spanned: Vec<(Range<usize>, WireSpec)> =
                out.wires.iter().map(|w| (0..0, w.clone())).collect();
            if find_loop(&out.imps, &spanned).is_some() {
                tracing::warn!(
                    "script {stem}: its `from` wires would close a loop; it plays without them"
                );
                out.wires.truncate(before);
            }
        }
        out
    }
}

/// The `socket` value of the `[realm]` table, read line by line so that a
/// syntax error elsewhere in the file does not hide it.
fn socket_in(text: &str) -> Option<PathBuf> {
    if let Ok(table) = text.parse::<toml::Table>() {
        return table
            .get("realm")
            .and_then(|r| r.get("socket"))
            .and_then(|s| s.as_str())
            .map(PathBuf::from);
    }
    let mut in_realm = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            let header = line.split('#').next().unwrap_or_default().trim();
            in_realm = header.trim_start_matches('[').trim_end_matches(']').trim() == "realm";
            continue;
        }
        if !in_realm {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "socket" {
            continue;
        }
        // The value alone parses as TOML (a string, trailing comment allowed).
        if let Ok(t) = format!("v = {}", value.trim()).parse::<toml::Table>() {
            if let Some(s) = t.get("v").and_then(|v| v.as_str()) {
                return Some(PathBuf::from(s));
            }
        }
    }
    None
}

/// Returns the span of a wire that closes a loop, if any.
fn find_loop(
    imps: &BTreeMap<String, ImpSpec>,
    wires: &[(Range<usize>, WireSpec)],
) -> Option<Range<usize>> {
    // Adding wires one by one: a wire closes a loop when its source is
    // already reachable from its destination.
    let names: Vec<&String> = imps.keys().collect();
    let index = |n: &str| {
        names
            .iter()
            .position(|x| x.as_str() == n)
            .expect("validated")
    };
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for (span, w) in wires {
        let (a, b) = (index(&w.from), index(&w.to));
        let mut stack = vec![b];
        let mut seen = vec![false; names.len()];
        while let Some(n) = stack.pop() {
            if n == a {
                return Some(span.clone());
            }
            if !std::mem::replace(&mut seen[n], true) {
                stack.extend(adj[n].iter().copied());
            }
        }
        adj[a].push(b);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RealmConfig, ConfigError> {
        RealmConfig::parse(Path::new("/music/realm.toml"), text)
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse("[imps.mon]\nlibrary = \"monitor\"\n").unwrap();
        assert_eq!(c.settings.vault, Path::new("/music/vault.json"));
        assert_eq!(c.settings.library_dir, Path::new("/music/target/release"));
        assert_eq!(c.imps["mon"].library, "monitor");
        assert_eq!(c.imps["mon"].config, serde_json::json!({}));
    }

    #[test]
    fn config_table_becomes_json() {
        let c =
            parse("[imps.mon]\nlibrary = \"monitor\"\nconfig = { label = \"x\", log = false }\n")
                .unwrap();
        assert_eq!(
            c.imps["mon"].config,
            serde_json::json!({"label": "x", "log": false})
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let e = parse("[imps.mon]\nlibrary = \"monitor\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().starts_with("/music/realm.toml:2:"), "{e}");
    }

    #[test]
    fn unknown_key_is_located() {
        let e = parse("[imps.mon]\nlibrary = \"monitor\"\nlibary = 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.message.contains("libary"), "{e}");
    }

    #[test]
    fn wire_to_unknown_imp_is_located() {
        let e = parse("[imps.a]\nlibrary = \"monitor\"\n\n[[wires]]\nfrom = \"a\"\nto = \"b\"\n")
            .unwrap_err();
        assert_eq!((e.line, e.column), (6, 6), "{e}");
        assert!(e.message.contains("`b`"), "{e}");
    }

    #[test]
    fn range_errors_are_located() {
        for (key, value) in [
            ("block_size", "0"),
            ("sample_rate", "100"),
            ("midi_backend", "\"oss\""),
            ("reconcile_ms", "0"),
            ("tempo", "0.0"),
        ] {
            let e = parse(&format!("# a comment\n[realm]\n{key} = {value}\n")).unwrap_err();
            assert_eq!((e.line, e.column), (3, key.len() + 4), "{key}: {e}");
            assert!(e.message.contains(key), "{e}");
        }
    }

    #[test]
    fn a_file_without_imps_declares_none() {
        assert!(!parse("").unwrap().imps_declared);
        assert!(!parse("[realm]\ntempo = 100.0\n").unwrap().imps_declared);
        let c = parse("imps = {}\n").unwrap();
        assert!(c.imps_declared && c.imps.is_empty());
        assert!(parse("[imps.a]\nlibrary = \"m\"\n").unwrap().imps_declared);
    }

    #[test]
    fn imp_locations() {
        let c = parse("[imps.a]\nlibrary = \"m\"\nconfig = { x = 1 }\n[imps.b]\nlibrary = \"m\"\n")
            .unwrap();
        assert_eq!(c.locations["a"].library, (2, 11));
        assert_eq!(c.locations["a"].config, (3, 10));
        assert_eq!(c.locations["b"].config, (4, 7));
    }

    #[test]
    fn the_socket_is_found_in_a_broken_file() {
        assert_eq!(
            socket_in("[realm]\nsocket = \"run/x.sock\" # mine\n[imps.a]\nlibrary = \"m\n"),
            Some(PathBuf::from("run/x.sock"))
        );
        assert_eq!(
            socket_in("[imps.a]\nsocket = \"no\"\n[realm]\nvault = 1 2\n"),
            None
        );
    }

    #[test]
    fn loops_are_refused() {
        let text = "[imps.a]\nlibrary = \"m\"\n[imps.b]\nlibrary = \"m\"\n\
                    [[wires]]\nfrom = \"a\"\nto = \"b\"\n[[wires]]\nfrom = \"b\"\nto = \"a\"\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
    }

    fn live(stems: &[&str]) -> BTreeMap<String, LiveScript> {
        stems
            .iter()
            .map(|s| {
                (
                    s.to_string(),
                    LiveScript {
                        path: format!("/music/scripts/{s}.json").into(),
                        text: "{}".into(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn scripts_play_into_synth_by_default_and_tables_wire_and_map_them() {
        let text = "[imps.synth]\nlibrary = \"midi_port\"\n[imps.keys]\nlibrary = \"midi_port\"\n\
                    [scripts.bass]\nto = [\"keys\"]\nfrom = \"synth\"\nnotes = [{ pitch = 1, gate = 2 }]\n\
                    wires = [{ output = 1, to = \"keys\", input = 2 }]\n";
        let c = parse(text).unwrap();
        assert_eq!(c.settings.scripts_dir, Path::new("/music/scripts"));
        let m = c.with_scripts(&live(&["demo", "bass"]));
        let demo = &m.imps["seq.demo"];
        assert_eq!(demo.library, SCRIPT_LIBRARY);
        assert_eq!(demo.config["file"], "/music/scripts/demo.json");
        assert_eq!(demo.config["mapping"], serde_json::json!({}));
        assert_eq!(
            m.imps["seq.bass"].config["mapping"],
            serde_json::json!({"notes": [{"pitch": 1, "gate": 2}]})
        );
        let wires: Vec<(&str, &str)> = m
            .wires
            .iter()
            .map(|w| (w.from.as_str(), w.to.as_str()))
            .collect();
        assert_eq!(
            wires,
            vec![
                ("seq.bass", "keys"),
                ("seq.bass", "keys"),
                ("synth", "seq.bass"),
                ("seq.demo", "synth")
            ]
        );
        assert_eq!((m.wires[1].output, m.wires[1].input), (1, 2));
        // No synth, no default wire.
        let c = parse("[imps.keys]\nlibrary = \"midi_port\"\n").unwrap();
        assert!(c.with_scripts(&live(&["demo"])).wires.is_empty());
    }

    #[test]
    fn script_tables_name_declared_imps_without_loops() {
        let e = parse("[imps]\n[scripts.a]\nto = \"synth\"\n").unwrap_err();
        assert!(e.message.contains("to = \"synth\""), "{e}");
        let e = parse("[imps.x]\nlibrary = \"m\"\n[scripts.a]\nto = \"x\"\nfrom = \"x\"\n")
            .unwrap_err();
        assert!(e.message.contains("loop"), "{e}");
        let e = parse("[imps]\n[scripts.\"a b\"]\n").unwrap_err();
        assert!(e.message.contains("script name"), "{e}");
    }
}
