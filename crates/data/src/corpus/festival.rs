//! Festival's utterances many to one process ([`super::batch`]). `text2wave` starts festival
//! (about 0.3 s) and loads a voice for every file it speaks, which for the diphone voices is
//! most of the 0.5 s a short sentence takes. [`render`] speaks a batch of texts in one
//! `festival -b` run with `text2wave`'s own recipe (the voice, then `tts_file` with hooks that
//! append every utterance's wave to the file and rewrite the header at the end), so each raw
//! output is what `text2wave -eval "(voice_V)" -o RAW TEXT` writes: byte for byte for most,
//! the last samples of a few slightly different (festival's state after the utterances before
//! it; 2 of 204 measured). An item left without its done-marker (festival stopped at a text it
//! rejects) is spoken again on its own by [`super::tts::synthesize`], with its fallback.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::batch::Item;
use super::run_command;
use super::tts::RAW;
use crate::error::DataError;

/// The text file festival reads, in an utterance's temporary directory.
pub const TEXT: &str = "text.txt";

/// text2wave's synthesis of one file as a function: `(mtla_say 'voice_V TEXT RAW DONE)`.
const PRELUDE: &str = r#"
(defvar mtla_fp nil)
(defvar mtla_samples 0)
(defvar mtla_last nil)
(define (mtla_append utt)
  (if (eq? mtla_samples 0)
      (wave.save.header mtla_fp (utt.wave utt) 'riff nil (list (list "numsamples" 0))))
  (set! mtla_samples (+ mtla_samples (get_param 'num_samples (wave.info (utt.wave utt)) 0)))
  (wave.save.data.fp (utt.wave utt) mtla_fp 'riff nil)
  (set! mtla_last utt))
(set! tts_hooks (list utt.synth mtla_append))
(define (mtla_say voice text raw done)
  (set! mtla_samples 0)
  (eval (list voice))
  (set! mtla_fp (fopen raw "wb"))
  (tts_file text (tts_find_text_mode text auto-text-mode-alist))
  (fseek mtla_fp 0 0)
  (wave.save.header mtla_fp (utt.wave mtla_last) 'riff nil (list (list "numsamples" mtla_samples)))
  (fclose mtla_fp)
  (fclose (fopen done "w")))
"#;

/// A path as a Scheme string literal.
fn scheme_string(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Speaks `items` (each with its own festival voice, `kal_diphone`, ...) in one festival
/// process, its script in `work`. Items festival could not finish have no done-marker; the
/// error, if festival failed, is returned after every item it finished is in place.
pub fn render(items: &[Item], work: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(work).map_err(|e| DataError::io(work, e))?;
    let mut scm = String::from(PRELUDE);
    for item in items {
        item.prepare()?;
        let text = item.tmp.join(TEXT);
        std::fs::write(&text, item.text).map_err(|e| DataError::io(&text, e))?;
        let _ = writeln!(
            scm,
            "(mtla_say 'voice_{} {} {} {})",
            item.voice,
            scheme_string(&text),
            scheme_string(&item.tmp.join(RAW)),
            scheme_string(&item.done())
        );
    }
    let script = work.join("batch.scm");
    std::fs::write(&script, scm).map_err(|e| DataError::io(&script, e))?;
    run_command(Command::new("festival").arg("-b").arg(&script))
}
