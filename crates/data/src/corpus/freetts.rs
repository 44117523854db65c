//! FreeTTS's utterances many to one JVM ([`super::batch`]). `java -jar freetts.jar` spends
//! about 1.4 s starting the JVM and loading its voice, most of the 1.7 s a short sentence takes.
//! [`render`] speaks a batch in one run: `-lines` speaks every line of a file on its own and
//! `-dumpMultiAudio` writes every utterance to its own file (`out0.wav`, `out1.wav`, ...), which
//! for a text of one sentence is byte for byte the file `-dumpAudio` writes for it alone.
//! FreeTTS cuts a line into utterances at sentence ends, so only texts of one sentence are
//! batched ([`one_sentence`]), and a batch that wrote more or fewer files than it has lines
//! is not used at all (which file belongs to which line is then unknown).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::batch::Item;
use super::run_command;
use super::tts::{FREETTS_JAR, RAW};
use crate::error::DataError;

/// Whether FreeTTS speaks `text` as one utterance, conservatively: one line, and no word but
/// the last holds the punctuation at which its tokenizer may end an utterance (`.`, `!`, `?`,
/// `:`, `;`), so "Open the file." is batched and "Wait... Who are you?" is not.
pub fn one_sentence(text: &str) -> bool {
    !text.contains(['\n', '\r'])
        && text
            .split_whitespace()
            .rev()
            .skip(1)
            .all(|word| !word.contains(['.', '!', '?', ':', ';']))
}

/// Speaks `items` (one voice, texts of one sentence) in one FreeTTS run, its line file and
/// outputs in `work` (emptied first). Unless FreeTTS wrote exactly one file per item, no item
/// is marked done and the error says so.
pub fn render(items: &[Item], work: &Path) -> Result<(), DataError> {
    let Some(first) = items.first() else {
        return Ok(());
    };
    if let Some(other) = items.iter().find(|i| i.voice != first.voice) {
        return Err(DataError::Invalid(format!(
            "a FreeTTS batch speaks one voice, not {} and {}",
            first.voice, other.voice
        )));
    }
    if let Some(item) = items.iter().find(|i| !one_sentence(i.text)) {
        return Err(DataError::Invalid(format!(
            "FreeTTS may speak {:?} as several utterances; it cannot be batched",
            item.text
        )));
    }
    // A batch interrupted before its clean-up leaves its `outN.wav` files, which would count as
    // this batch's: start from an empty work directory.
    if work.exists() {
        std::fs::remove_dir_all(work).map_err(|e| DataError::io(work, e))?;
    }
    std::fs::create_dir_all(work).map_err(|e| DataError::io(work, e))?;
    let lines = work.join("lines.txt");
    let text: String = items.iter().map(|i| format!("{}\n", i.text)).collect();
    std::fs::write(&lines, text).map_err(|e| DataError::io(&lines, e))?;
    for item in items {
        item.prepare()?;
    }
    run_command(
        Command::new("java")
            .args([
                "-jar",
                FREETTS_JAR,
                "-voice",
                first.voice,
                "-dumpMultiAudio",
            ])
            .arg(work.join("out.wav"))
            .arg("-lines")
            .arg(&lines),
    )?;
    let output = |k: usize| -> PathBuf { work.join(format!("out{k}.wav")) };
    let written = (0..).take_while(|&k| output(k).exists()).count();
    if written != items.len() {
        return Err(DataError::Invalid(format!(
            "FreeTTS wrote {written} utterances for the {} lines of {}",
            items.len(),
            lines.display()
        )));
    }
    for (k, item) in items.iter().enumerate() {
        let raw = item.tmp.join(RAW);
        std::fs::rename(output(k), &raw).map_err(|e| DataError::io(&raw, e))?;
        let done = item.done();
        std::fs::write(&done, b"").map_err(|e| DataError::io(&done, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_texts_of_one_sentence_are_batched() {
        for text in [
            "Open the file.",
            "Why did you do that?",
            "Run, run for your life!",
            "An e-mail address, a name and a phone number",
        ] {
            assert!(one_sentence(text), "{text:?}");
        }
        for text in [
            "Wait... Who are you?",
            "Done. Close the window.",
            "Warning: the disk is full.",
            "Click OK! Then wait.",
            "Use the file, e.g. notes.txt",
            "Two lines\nof text.",
        ] {
            assert!(!one_sentence(text), "{text:?}");
        }
    }
}
