//! Exactness against the authors' PyTorch MTLA: fixtures in tests/data come from
//! `../shared/oracles/mtla_reference.py` (see data/make_fixtures.sh). Every output and the
//! final compressed cache must be within 1e-4 (f32).

use std::path::Path;

use mtla::reference::check_reference;

type B = burn::backend::Flex;

fn check(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let report = check_reference::<B>(&path, &Default::default()).unwrap();
    println!("{}", serde_json::to_string(&report).unwrap());
    assert!(
        report.max_abs_diff_prefix.is_some(),
        "{name}: fixture has a prefix path"
    );
    assert!(report.within(1e-4), "{name}: {report:?}");
}

#[test]
fn s1_behaves_as_mla_and_grows_its_cache() {
    check("s1.safetensors");
}

#[test]
fn s2_with_per_row_position_offsets() {
    check("s2_offsets.safetensors");
}

#[test]
fn s3_with_bias_and_ragged_length() {
    check("s3_bias.safetensors");
}

#[test]
fn s4_with_low_rank_query() {
    check("s4_qlora.safetensors");
}

#[test]
fn s3_long_prefix_batch_3() {
    check("s3_long.safetensors");
}

#[test]
fn paper_dimensions() {
    check("paper_s2.safetensors");
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/s2_offsets.safetensors");
    let file = mtla::import::TensorFile::open(&src).unwrap();
    let config = file.reference_config().unwrap();
    let mut bad = config.clone();
    bad.kv_lora_rank = 64;
    let msg = mtla::Mtla::<B>::load_pytorch(&bad, &file, "", &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("wkv_a.weight") && msg.contains("shape"),
        "{msg}"
    );
    let msg = mtla::Mtla::<B>::load_pytorch(&config, &file, "decoder.", &Default::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("'decoder.wq.weight' is missing"), "{msg}");
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"garbage").unwrap();
    let msg = check_reference::<B>(&junk, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("junk.safetensors") && msg.contains("not a safetensors"),
        "{msg}"
    );
}
