//! `mtla-st score --hyp FILE --ref FILE [--ref FILE ...]`: corpus BLEU, chrF, chrF++
//! (sacreBLEU 2.6.0 defaults, all references) and WER, lower-cased/no-punctuation WER and CER
//! (jiwer 4.0.0, first reference) of a hypothesis file, printed as one JSON object on stdout
//! (the `metrics::QualityReport`; an undefined WER/CER is `null`). A one-line summary
//! goes to stderr.

use std::path::PathBuf;

use metrics::{score_files, QualityReport};

/// Arguments of `mtla-st score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Hypotheses, UTF-8, one segment per line (empty lines are segments).
    #[arg(long, value_name = "FILE")]
    pub hyp: PathBuf,
    /// References with the same number of lines; repeat for multi-reference BLEU/chrF.
    #[arg(long = "ref", value_name = "FILE", required = true)]
    pub refs: Vec<PathBuf>,
}

/// Runs `mtla-st score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let report = score_files(&args.hyp, &args.refs)?;
    println!("{}", serde_json::to_string(&report)?);
    eprintln!("{}", summary(&report));
    Ok(())
}

/// sacreBLEU's BLEU line followed by chrF and the error rates (or why they are missing).
fn summary(report: &QualityReport) -> String {
    let b = &report.bleu;
    let precisions: Vec<String> = b.precisions.iter().map(|p| format!("{p:.1}")).collect();
    let ratio = if b.ref_len > 0 {
        b.sys_len as f64 / b.ref_len as f64
    } else {
        0.0
    };
    let rate = |r: Option<f64>| {
        r.map_or("undefined (all references empty)".to_string(), |r| {
            format!("{:.2}%", 100.0 * r)
        })
    };
    format!(
        "{} segments: BLEU = {:.2} {} (BP = {:.3} ratio = {ratio:.3} hyp_len = {} ref_len = {}) | \
         chrF2 = {:.2} | chrF2++ = {:.2} | WER = {} | WER lc/no-punct = {} | CER = {}",
        report.segments,
        b.score,
        precisions.join("/"),
        b.bp,
        b.sys_len,
        b.ref_len,
        report.chrf.score,
        report.chrf_pp.score,
        rate(report.wer.as_ref().map(|w| w.wer)),
        rate(report.wer_lc_nopunct.as_ref().map(|w| w.wer)),
        rate(report.cer.as_ref().map(|c| c.cer)),
    )
}
