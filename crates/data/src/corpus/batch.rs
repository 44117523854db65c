//! Utterances spoken many to one process. festival and FreeTTS spend most of a short sentence's
//! time starting up and loading their voice (about 0.3 + 0.2 s and 1.4 s); a batch pays that
//! once for [`BATCH`] utterances. Each engine's `render` leaves every utterance it finished as
//! its raw output in the utterance's temporary directory with a done-marker beside it, which
//! [`super::tts::synthesize`] takes instead of speaking the text again; whatever a batch did not
//! finish is spoken there on its own, with its fallback.

use std::path::{Path, PathBuf};

use super::tts::Engine;
use super::{festival, freetts};
use crate::error::DataError;

/// The file, in an utterance's temporary directory `tmp`, whose presence says that its
/// [`super::tts::RAW`] holds a batch's finished output in `voice` (named after the voice, so
/// that a build resumed with other engines does not take another voice's output).
pub fn done(tmp: &Path, voice: &str) -> PathBuf {
    tmp.join(format!("{voice}.done"))
}

/// Utterances per process: enough to spread its start over many, few enough that a failure
/// costs little.
pub const BATCH: usize = 64;

/// One utterance of a batch: its text, the engine's voice (`kal_diphone`, `kevin16`, ...) and
/// its temporary directory (where the raw output and the done-marker go).
#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub text: &'a str,
    pub voice: &'a str,
    pub tmp: PathBuf,
}

impl Item<'_> {
    /// The done-marker's path.
    pub fn done(&self) -> PathBuf {
        done(&self.tmp, self.voice)
    }

    /// Creates the temporary directory and removes a done-marker of an earlier run, so that
    /// only this batch's outputs count as finished.
    pub fn prepare(&self) -> Result<(), DataError> {
        std::fs::create_dir_all(&self.tmp).map_err(|e| DataError::io(&self.tmp, e))?;
        let done = self.done();
        match std::fs::remove_file(&done) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DataError::io(&done, e)),
            _ => Ok(()),
        }
    }
}

/// An engine's batch synthesis: speaks `items` in one process, using `work` (a directory it
/// may create) for its scripts and outputs; an error, if the engine failed, comes after every
/// item it finished is in place.
pub type Render = fn(&[Item], &Path) -> Result<(), DataError>;

/// How `engine` speaks `text` in a batch, if it can: festival any text, FreeTTS a text of one
/// sentence ([`freetts::one_sentence`]); flite (fast to start) and espeak-ng never.
pub fn renderer(engine: Engine, text: &str) -> Option<Render> {
    match engine {
        Engine::Festival => Some(festival::render),
        Engine::Freetts if freetts::one_sentence(text) => Some(freetts::render),
        _ => None,
    }
}
