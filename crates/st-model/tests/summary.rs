//! The paper preset's parameter totals agree with the paper (App. D) within 1%, and the
//! per-token cache sizes follow Sec. 4.4.

use std::path::Path;

use mtla::AttentionKind;
use st_model::summary::summarize;
use st_model::{ModelConfig, SpeechModel};

type B = burn::backend::Flex;

fn preset() -> ModelConfig {
    ModelConfig::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/paper_mustc.toml"),
    )
    .unwrap()
}

#[test]
fn paper_preset_parameter_counts_match_the_paper() {
    for (kind, paper) in [
        (AttentionKind::Mha, 78e6),
        (AttentionKind::Mla, 78e6),
        (AttentionKind::Mtla, 78e6),
        (AttentionKind::Gqa, 74e6),
        (AttentionKind::Mqa, 74e6),
    ] {
        let mut config = preset();
        config.decoder.attention.kind = kind;
        let config = config.resolved().unwrap();
        let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
        let s = summarize(&model, &config, 100, 20);
        let rel = (s.total as f64 - paper).abs() / paper;
        println!(
            "{kind}: {} parameters ({:+.2}% vs the paper)",
            s.total,
            100.0 * (s.total as f64 / paper - 1.0)
        );
        assert!(rel < 0.01, "{kind}: {} vs {paper}", s.total);
        assert_eq!(
            s.modules.iter().map(|(_, n)| n).sum::<usize>(),
            s.total,
            "modules add up"
        );
    }
}

#[test]
fn cache_bytes_per_token_follow_the_kind() {
    let per_token = |kind, s| {
        let mut c = preset();
        c.decoder.attention.kind = kind;
        c.decoder.attention.down_rate = s;
        let c = c.resolved().unwrap();
        // 9 layers x elements x 4 bytes.
        c.decoder.attention.kv_elements_per_token() * 9.0 * 4.0
    };
    assert_eq!(per_token(AttentionKind::Mha, 2), 36864.0);
    assert_eq!(per_token(AttentionKind::Mla, 2), 10368.0);
    assert_eq!(per_token(AttentionKind::Mtla, 2), 5184.0);
    assert_eq!(per_token(AttentionKind::Mtla, 4), 2592.0);
}

#[test]
fn config_errors_name_the_field() {
    let err = ModelConfig::from_toml("d_model = 512\n[decoder]\nlayrs = 3\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layrs") && err.contains("layers"),
        "unknown keys list the valid ones: {err}"
    );
    let err = ModelConfig::from_toml("[decoder.attention]\ndown_rate = 0\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("down_rate"), "{err}");
    let err = ModelConfig::from_toml("[encoder]\nheads = 7\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("encoder.heads"), "{err}");
}
