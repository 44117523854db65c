//! English speech from Debian's TTS engines: flite, festival, FreeTTS (voices built from
//! recordings) and espeak-ng (formant synthesis, many accents). Every utterance's voice, pitch
//! and tempo come from a hash of its id, so a rerun makes the same audio. sox converts to 16 kHz
//! mono and, for the recorded voices, shifts pitch (+-150 cents) and tempo (0.9-1.15x) to make
//! pseudo-speakers, as the shared recipe's `synth.py` does.

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use sha1::{Digest, Sha1};

use super::{batch, festival, run_command};
use crate::batcher::mix;
use crate::error::DataError;

/// A speech synthesiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    Espeak,
    Flite,
    Festival,
    Freetts,
}

impl Engine {
    /// Every engine, in the order of `--engines`' default.
    pub const ALL: [Engine; 4] = [
        Engine::Espeak,
        Engine::Flite,
        Engine::Festival,
        Engine::Freetts,
    ];

    /// Share of utterances (before normalising over the chosen engines): the recorded voices
    /// are favoured; espeak-ng is far from natural speech.
    fn weight(self) -> f64 {
        match self {
            Engine::Espeak => 0.15,
            Engine::Flite => 0.4,
            Engine::Festival => 0.25,
            Engine::Freetts => 0.1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Espeak => "espeak",
            Engine::Flite => "flite",
            Engine::Festival => "festival",
            Engine::Freetts => "freetts",
        }
    }

    /// Program (or file) that must exist for this engine.
    fn requirement(self) -> &'static str {
        match self {
            Engine::Espeak => "espeak-ng",
            Engine::Flite => "flite",
            Engine::Festival => "text2wave",
            Engine::Freetts => FREETTS_JAR,
        }
    }
}

impl FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Engine::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("unknown TTS engine {s:?} (espeak, flite, festival, freetts)"))
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Debian packages that provide the engines and sox.
pub const APT_PACKAGES: &[&str] = &[
    "espeak-ng",
    "flite",
    "festival",
    "festvox-kallpc16k",
    "festvox-kdlpc16k",
    "festvox-us-slt-hts",
    "sox",
    "freetts",
];

/// FreeTTS, run as `java -jar FREETTS_JAR` (Debian's `freetts` package).
pub const FREETTS_JAR: &str = "/usr/share/java/freetts.jar";

/// The engine's output, before sox, in an utterance's temporary directory.
pub const RAW: &str = "raw.wav";
const ACCENTS: &[&str] = &[
    "en-us",
    "en-gb",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
];
const VARIANTS: &[&str] = &[
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2",
    "klatt3", "klatt4", "Alex", "Andrea", "Annie", "Andy", "Denis", "Gene", "Hugo", "Jacky", "Lee",
    "Michael", "Mike", "adam", "anika", "aunty", "belinda", "benjamin", "caleb", "david", "ed",
    "edward", "grandma", "grandpa", "john", "linda", "max", "norbert", "paul", "rob", "robert",
    "shelby", "steph", "travis",
];
const FLITE: &[&str] = &["kal16", "awb", "rms", "slt"];
const FESTIVAL: &[&str] = &["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"];

/// One utterance's voice.
#[derive(Debug, Clone, PartialEq)]
pub enum Voice {
    /// espeak-ng voice (`accent+variant`), speed in words per minute, pitch 0-99.
    Espeak {
        voice: String,
        speed: u32,
        pitch: u32,
    },
    /// A recorded voice, shifted by `cents` and played `tempo` times faster.
    Recorded {
        engine: Engine,
        voice: &'static str,
        cents: i32,
        tempo: f32,
    },
}

/// Deterministic draws from an utterance id: draw `k` is `mix(seed, k)`.
struct Draws {
    seed: u64,
    k: u64,
}

impl Draws {
    fn new(id: &str) -> Self {
        let d = Sha1::digest(id.as_bytes());
        Self {
            seed: u64::from_be_bytes(d[..8].try_into().expect("8 bytes")),
            k: 0,
        }
    }

    fn next(&mut self) -> u64 {
        self.k += 1;
        mix(self.seed, self.k)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

impl Voice {
    /// The voice of utterance `id` among `engines` (weighted as [`Engine`] describes).
    pub fn pick(id: &str, engines: &[Engine]) -> Self {
        assert!(!engines.is_empty(), "at least one TTS engine");
        let mut d = Draws::new(id);
        let total: f64 = engines.iter().map(|e| e.weight()).sum();
        let mut x = d.unit() * total;
        let engine = *engines
            .iter()
            .find(|e| {
                x -= e.weight();
                x < 0.0
            })
            .unwrap_or(&engines[engines.len() - 1]);
        let voice = match engine {
            Engine::Espeak => {
                return Voice::Espeak {
                    voice: format!("{}+{}", d.pick(ACCENTS), d.pick(VARIANTS)),
                    speed: d.int(140, 190) as u32,
                    pitch: d.int(35, 65) as u32,
                }
            }
            Engine::Flite => *d.pick(FLITE),
            Engine::Festival => *d.pick(FESTIVAL),
            Engine::Freetts => "kevin16",
        };
        Voice::Recorded {
            engine,
            voice,
            cents: d.int(-150, 150) as i32,
            tempo: (0.9 + 0.25 * d.unit()) as f32,
        }
    }

    /// The plain voice used when another fails (festival rejects some texts).
    pub fn fallback() -> Self {
        Voice::Recorded {
            engine: Engine::Flite,
            voice: "kal16",
            cents: 0,
            tempo: 1.0,
        }
    }
}

/// `engine:voice:...`, the manifest's speaker column.
impl fmt::Display for Voice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Voice::Espeak {
                voice,
                speed,
                pitch,
            } => write!(f, "espeak:{voice}:s{speed}:p{pitch}"),
            Voice::Recorded {
                engine,
                voice,
                cents,
                tempo,
            } => write!(f, "{engine}:{voice}:c{cents}:t{tempo:.2}"),
        }
    }
}

/// Fails, naming what to install, when sox or an engine's program is missing.
pub fn check_tools(engines: &[Engine]) -> Result<(), DataError> {
    let on_path = |prog: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
    };
    let mut missing: Vec<&str> = Vec::new();
    for req in std::iter::once("sox").chain(engines.iter().map(|e| e.requirement())) {
        let present = if req.starts_with('/') {
            Path::new(req).is_file() && on_path("java")
        } else {
            on_path(req)
        };
        if !present {
            missing.push(req);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(DataError::Command {
        program: missing.join(", "),
        reason: format!(
            "not installed; run `apt-get install -y --no-install-recommends {}` (or pass --install-tools)",
            APT_PACKAGES.join(" ")
        ),
    })
}

/// Speaks `text` with `voice` into `dst` (16 kHz mono; the format follows `dst`'s extension:
/// `.flac`, `.ogg` (Vorbis, quality `ogg_quality`) or `.wav`), using `tmp` for the raw output.
/// `augment: false` leaves out the pitch and tempo shift. An utterance whose `tmp` holds a
/// batch's finished output in its voice ([`batch::done`]) is not spoken again.
pub fn synthesize(
    text: &str,
    voice: &Voice,
    dst: &Path,
    tmp: &Path,
    augment: bool,
    ogg_quality: i32,
) -> Result<(), DataError> {
    let raw = tmp.join(RAW);
    let mut effects: Vec<String> = Vec::new();
    match voice {
        Voice::Espeak {
            voice,
            speed,
            pitch,
        } => {
            run_command(
                Command::new("espeak-ng")
                    .args([
                        "-v",
                        voice,
                        "-s",
                        &speed.to_string(),
                        "-p",
                        &pitch.to_string(),
                        "-w",
                    ])
                    .arg(&raw)
                    .arg(text),
            )?;
        }
        Voice::Recorded {
            engine,
            voice,
            cents,
            tempo,
        } => {
            if augment {
                effects = vec![
                    "pitch".into(),
                    cents.to_string(),
                    "tempo".into(),
                    "-s".into(),
                    format!("{tempo:.2}"),
                ];
            }
            match engine {
                Engine::Flite => run_command(
                    Command::new("flite")
                        .args(["-voice", voice, "-t", text, "-o"])
                        .arg(&raw),
                )?,
                // Already spoken by a batch, or on its own now.
                Engine::Festival | Engine::Freetts if batch::done(tmp, voice).exists() => {}
                Engine::Festival => {
                    let script = tmp.join(festival::TEXT);
                    std::fs::write(&script, text).map_err(|e| DataError::io(&script, e))?;
                    run_command(
                        Command::new("text2wave")
                            .args(["-eval", &format!("(voice_{voice})"), "-o"])
                            .arg(&raw)
                            .arg(&script),
                    )?
                }
                Engine::Freetts => run_command(
                    Command::new("java")
                        .args(["-jar", FREETTS_JAR, "-voice", voice, "-dumpAudio"])
                        .arg(&raw)
                        .args(["-text", text]),
                )?,
                Engine::Espeak => unreachable!("espeak voices are Voice::Espeak"),
            };
        }
    }
    let mut sox = Command::new("sox");
    sox.args(["-R", "-q"]).arg(&raw).args(["-b", "16"]);
    if dst.extension().is_some_and(|e| e == "ogg") {
        sox.args(["-C", &ogg_quality.to_string()]);
    }
    sox.arg(dst)
        .args(["remix", "-", "gain", "-6"])
        .args(&effects)
        .args(["rate", "16000", "norm", "-1"]);
    run_command(&mut sox)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_are_deterministic_and_follow_the_engines() {
        let all = Engine::ALL;
        assert_eq!(
            Voice::pick("deen-0123456789", &all),
            Voice::pick("deen-0123456789", &all)
        );
        let voices: Vec<Voice> = (0..400)
            .map(|i| Voice::pick(&format!("u{i}"), &all))
            .collect();
        let share = |e: Engine| {
            voices
                .iter()
                .filter(|v| match v {
                    Voice::Espeak { .. } => e == Engine::Espeak,
                    Voice::Recorded { engine, .. } => *engine == e,
                })
                .count()
        };
        assert!(
            share(Engine::Flite) > share(Engine::Freetts),
            "weights favour flite"
        );
        assert!(Engine::ALL.iter().all(|&e| share(e) > 0));
        for v in &voices {
            if let Voice::Recorded { cents, tempo, .. } = v {
                assert!((-150..=150).contains(cents) && (0.9..=1.15).contains(tempo));
            }
        }
        let only = [Engine::Flite];
        assert!((0..50).all(|i| matches!(
            Voice::pick(&format!("u{i}"), &only),
            Voice::Recorded {
                engine: Engine::Flite,
                ..
            }
        )));
    }
}
