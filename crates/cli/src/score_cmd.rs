//! `mtla-st score --hyp FILE --ref FILE [--ref FILE ...]`: corpus BLEU, chrF, chrF++
//! (sacreBLEU 2.6.0 defaults, all references) and WER, lower-cased/no-punctuation WER and CER
//! (jiwer 4.0.0, first reference) of a hypothesis file, printed as one JSON object on stdout
//! (the `metrics::QualityReport`; an undefined WER/CER is `null`). A one-line summary
//! goes to stderr. With `--baseline FILE`, a paired bootstrap test of BLEU and WER against
//! that system's hypotheses is added (`paired_bootstrap`, sacreBLEU's `--paired-bs`).

use std::path::PathBuf;

use metrics::{paired_bootstrap, read_lines, read_streams, score_lines, PairedTest, QualityReport};
use serde::Serialize;

/// Arguments of `mtla-st score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Hypotheses, UTF-8, one segment per line (empty lines are segments).
    #[arg(long, value_name = "FILE")]
    pub hyp: PathBuf,
    /// References with the same number of lines; repeat for multi-reference BLEU/chrF.
    #[arg(long = "ref", value_name = "FILE", required = true)]
    pub refs: Vec<PathBuf>,
    /// Another system's hypotheses for the same segments: is `--hyp` better or worse by more
    /// than chance (paired bootstrap resampling of BLEU and WER, Koehn 2004)?
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Resamples of the paired bootstrap.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Seed of the resampling (sacreBLEU's default, `SACREBLEU_SEED`).
    #[arg(long, default_value_t = 12345)]
    pub seed: u64,
}

/// The report, and the paired tests against a baseline when one was given.
#[derive(Serialize)]
struct Scored {
    #[serde(flatten)]
    report: QualityReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    paired_bootstrap: Option<Vec<PairedTest>>,
}

/// Runs `mtla-st score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let (hyps, refs) = read_streams(&args.hyp, &args.refs)?;
    let report = score_lines(&hyps, &refs);
    eprintln!("{}", summary(&report));
    let paired_bootstrap = match &args.baseline {
        Some(baseline) => {
            anyhow::ensure!(args.resamples > 0, "--resamples must be at least 1");
            let base = read_lines(baseline)?;
            anyhow::ensure!(
                base.len() == hyps.len(),
                "{}: {} lines, but {} has {}",
                baseline.display(),
                base.len(),
                args.hyp.display(),
                hyps.len()
            );
            let tests = paired_bootstrap(&hyps, &base, &refs, args.resamples, args.seed)?;
            for t in &tests {
                eprintln!("{}", paired_summary(t));
            }
            Some(tests)
        }
        None => None,
    };
    let scored = Scored {
        report,
        paired_bootstrap,
    };
    println!("{}", serde_json::to_string(&scored)?);
    Ok(())
}

/// `BLEU 30.12 (95 % 28.9-31.4) vs baseline 29.80: p = 0.2310 (1000 resamples)`.
fn paired_summary(t: &PairedTest) -> String {
    let scale = if t.metric == "BLEU" { 1.0 } else { 100.0 };
    let unit = if t.metric == "BLEU" { "" } else { " %" };
    format!(
        "{} {:.2}{unit} (95 % {:.2}-{:.2}) vs baseline {:.2}{unit}: p = {:.4} ({} resamples)",
        t.metric,
        scale * t.system,
        scale * t.system_interval[0],
        scale * t.system_interval[1],
        scale * t.baseline,
        t.p_value,
        t.resamples
    )
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
         chrF2 = {:.2} | chrF2++ = {:.2} | WER = {} | WER lc/no-punct = {} | \
         WER 13a lc/no-punct (fairseq) = {} | CER = {}",
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
        rate(report.wer_13a_lc_nopunct.as_ref().map(|w| w.wer)),
        rate(report.cer.as_ref().map(|c| c.cer)),
    )
}
