//! `mtla-st plot ...`: SVG plots (plotters) of the experiments' raw JSON.

use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;

use crate::bench_cmd::DecodePoint;

#[derive(Debug, clap::Subcommand)]
pub enum PlotCommand {
    /// Decode time and KV-cache size against sequence length, from `bench decode --json`.
    Decode {
        #[arg(long)]
        json: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Training curves (train loss, validation accuracy) of the runs in a folder.
    Curves {
        /// A folder whose sub-folders are runs (e.g. the --out of `compare`).
        #[arg(long)]
        runs: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `mtla-st plot ...`.
pub fn run(cmd: PlotCommand) -> anyhow::Result<()> {
    match cmd {
        PlotCommand::Decode { json, out } => plot_decode(&json, &out),
        PlotCommand::Curves { runs, out } => plot_curves(&runs, &out),
    }
}

/// One named series of (x, y) points.
type Series = (String, Vec<(f64, f64)>);

/// How a chart is drawn: titles, log axes, and the corner for the legend (where the lines are not).
struct Chart<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    log_x: bool,
    log_y: bool,
    legend: SeriesLabelPosition,
}

/// A tick label without floating-point noise: at most 4 decimals, trailing zeros dropped
/// (`0.6000000001` -> `0.6`, `400` -> `400`), tiny values in scientific notation.
fn tick(v: f64) -> String {
    if v != 0.0 && v.abs() < 1e-3 {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn line_chart(path: &Path, c: &Chart, series: &[Series]) -> anyhow::Result<()> {
    let Chart {
        title,
        x_label,
        y_label,
        log_x,
        log_y,
        ..
    } = *c;
    let root = SVGBackend::new(path, (800, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(40)
        .y_label_area_size(60);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .draw()?;
            for (i, (name, points)) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .position(c.legend.clone())
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }};
    }
    let (ylo, yhi) = if log_y {
        (y0 * 0.8, y1 * 1.25)
    } else {
        (y0.min(0.0), y1 * 1.1)
    };
    match (log_x, log_y) {
        (true, true) => {
            draw!(builder.build_cartesian_2d((x0..x1).log_scale(), (ylo..yhi).log_scale())?)
        }
        (true, false) => draw!(builder.build_cartesian_2d((x0..x1).log_scale(), ylo..yhi)?),
        (false, true) => draw!(builder.build_cartesian_2d(x0..x1, (ylo..yhi).log_scale())?),
        (false, false) => draw!(builder.build_cartesian_2d(x0..x1, ylo..yhi)?),
    }
    root.present()?;
    Ok(())
}

fn plot_decode(json: &Path, out: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    let points: Vec<DecodePoint> =
        serde_json::from_value(value["points"].clone()).context("no 'points' in the JSON")?;
    let backend = value["backend"].as_str().unwrap_or("?").to_string();
    std::fs::create_dir_all(out)?;
    let mut beams: Vec<usize> = points.iter().map(|p| p.beam).collect();
    beams.sort();
    beams.dedup();
    let mut variants: Vec<String> = Vec::new();
    for p in &points {
        if !variants.contains(&p.variant) {
            variants.push(p.variant.clone());
        }
    }
    for beam in beams {
        let series = |f: &dyn Fn(&DecodePoint) -> f64| -> Vec<Series> {
            variants
                .iter()
                .map(|v| {
                    (
                        v.clone(),
                        points
                            .iter()
                            .filter(|p| &p.variant == v && p.beam == beam)
                            .map(|p| (p.length as f64, f(p)))
                            .collect(),
                    )
                })
                .collect()
        };
        let time = out.join(format!("decode_time_{backend}_beam{beam}.svg"));
        let title = format!("per-token decode time, beam {beam} ({backend})");
        let chart = Chart {
            title: &title,
            x_label: "prefix + target length",
            y_label: "ms / token",
            log_x: true,
            // One beam's times span less than a decade: a log axis would have no labels.
            log_y: false,
            legend: SeriesLabelPosition::UpperLeft,
        };
        line_chart(&time, &chart, &series(&|p| p.step_ms))?;
        let mem = out.join(format!("kv_cache_{backend}_beam{beam}.svg"));
        let title = format!("KV cache, beam {beam}");
        let chart = Chart {
            title: &title,
            y_label: "MiB",
            log_y: true,
            ..chart
        };
        line_chart(&mem, &chart, &series(&|p| p.cache_bytes as f64 / 1048576.0))?;
        eprintln!("wrote {} and {}", time.display(), mem.display());
    }
    Ok(())
}

fn plot_curves(runs: &Path, out: &Path) -> anyhow::Result<()> {
    let mut loss = Vec::new();
    let mut accuracy = Vec::new();
    let mut gain = Vec::new();
    let mut ctc_wer = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .with_context(|| format!("reading {}", runs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("train_log.jsonl").exists())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .map_or("run".into(), |n| n.to_string_lossy().to_string());
        let log = std::fs::read_to_string(dir.join("train_log.jsonl"))?;
        let rows: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let get = |key: &str| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|r| Some((r["update"].as_f64()?, r[key].as_f64()?)))
                .collect()
        };
        // Train loss smoothed over 50 updates for readability.
        let raw = get("loss");
        let smoothed = raw
            .chunks(50)
            .map(|c| {
                (
                    c.last().unwrap().0,
                    c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64,
                )
            })
            .collect();
        loss.push((name.clone(), smoothed));
        let percent = |key| get(key).into_iter().map(|(u, a)| (u, 100.0 * a)).collect();
        accuracy.push((name.clone(), percent("valid_accuracy")));
        gain.push((name.clone(), get("audio_gain")));
        ctc_wer.push((name, percent("ctc_wer")));
    }
    std::fs::create_dir_all(out)?;
    let chart = Chart {
        title: "training loss (bits/token, mean of 50 updates)",
        x_label: "update",
        y_label: "loss",
        log_x: false,
        log_y: false,
        legend: SeriesLabelPosition::UpperRight,
    };
    line_chart(&out.join("train_loss.svg"), &chart, &loss)?;
    let chart = Chart {
        title: "validation token accuracy",
        y_label: "%",
        legend: SeriesLabelPosition::LowerRight,
        ..chart
    };
    line_chart(&out.join("valid_accuracy.svg"), &chart, &accuracy)?;
    let mut wrote = vec!["train_loss.svg", "valid_accuracy.svg"];
    // Whether the models listen: only where the runs logged it.
    let listening = [
        (
            "audio_gain.svg",
            "audio gain: dev NLL on swapped audio minus on real audio (0 = not listening)",
            "bits/token",
            SeriesLabelPosition::UpperLeft,
            &gain,
        ),
        (
            "ctc_wer.svg",
            "dev greedy CTC WER",
            "%",
            SeriesLabelPosition::UpperRight,
            &ctc_wer,
        ),
    ];
    for (file, title, y_label, legend, series) in listening {
        if series.iter().any(|(_, s)| !s.is_empty()) {
            let chart = Chart {
                title,
                y_label,
                legend,
                ..chart
            };
            line_chart(&out.join(file), &chart, series)?;
            wrote.push(file);
        }
    }
    eprintln!("wrote {} in {}", wrote.join(", "), out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn tick_labels_carry_no_floating_point_noise() {
        assert_eq!(tick(0.6000000000000001), "0.6");
        assert_eq!(tick(400.0), "400");
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(1.25), "1.25");
        assert_eq!(tick(2e-5), "2.0e-5");
    }
}
