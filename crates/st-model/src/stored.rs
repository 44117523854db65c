//! The formats a checkpoint's weights are stored in: f32 as trained, f16 or 8-bit blocks
//! (GGML's Q8_0) for a shipped model, a half or a quarter of the size. Whatever the file holds,
//! [`widen`] gives the loader f32 (or f16) tensors, so the model computes in f32.
//!
//! Q8_0: a tensor of rank >= 2 is cut, in its stored row-major order, into blocks of [`BLOCK`]
//! weights (the last one shorter when the size is not a multiple); block `b` keeps one f16 scale
//! `d_b = max_i |w_i| / 127` and its weights as `q_i = round(w_i / d_b)` in i8, so that
//! `w_i ≈ d_b · q_i` to within `d_b / 2` (0.4 % of the block's largest weight): 8.5 bits per
//! weight against f16's 16. The quantized values sit under the tensor's own name (dtype I8, its
//! shape), the scales under the name + [`SCALE_SUFFIX`]. Biases and norms (rank < 2, a few
//! thousand values) stay f16.

use std::collections::HashMap;

use burn::tensor::f16;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// Weights per Q8_0 block, each block with its own scale.
pub const BLOCK: usize = 32;

/// The name of a Q8_0 tensor's scales: the tensor's name followed by this.
pub const SCALE_SUFFIX: &str = ".q8_0_scale";

/// The format weights are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoredPrecision {
    /// As trained.
    #[default]
    F32,
    /// Half the size (about 3 significant digits per weight).
    F16,
    /// 8-bit blocks with an f16 scale each (Q8_0), a little over a quarter of the size.
    Q8,
}

/// One tensor as written to a safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl StoredTensor {
    /// A view for `safetensors::serialize`.
    pub fn view(&self) -> TensorView<'_> {
        TensorView::new(self.dtype, self.shape.clone(), &self.data).expect("consistent sizes")
    }
}

fn f16_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values
        .flat_map(|v| f16::from_f32(v).to_le_bytes())
        .collect()
}

/// The tensor `name` of `shape` with `values`, as written in `precision`: one stored tensor, or
/// two (the 8-bit values and their scales) for a Q8 tensor of rank >= 2.
pub fn encode(
    name: &str,
    shape: &[usize],
    values: &[f32],
    precision: StoredPrecision,
) -> Vec<StoredTensor> {
    let tensor = |name: String, dtype, shape: Vec<usize>, data| StoredTensor {
        name,
        dtype,
        shape,
        data,
    };
    match precision {
        StoredPrecision::F32 => vec![tensor(
            name.into(),
            Dtype::F32,
            shape.to_vec(),
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )],
        StoredPrecision::Q8 if shape.len() >= 2 => {
            let (q, scales) = quantize(values);
            vec![
                tensor(
                    name.into(),
                    Dtype::I8,
                    shape.to_vec(),
                    q.iter().map(|&v| v as u8).collect(),
                ),
                tensor(
                    format!("{name}{SCALE_SUFFIX}"),
                    Dtype::F16,
                    vec![scales.len()],
                    scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                ),
            ]
        }
        StoredPrecision::F16 | StoredPrecision::Q8 => vec![tensor(
            name.into(),
            Dtype::F16,
            shape.to_vec(),
            f16_bytes(values.iter().copied()),
        )],
    }
}

/// Q8_0 of `values`: the 8-bit values and one f16 scale per [`BLOCK`] of them. The scale is
/// rounded to f16 before the values are divided by it, so that `scale · q` is what the file
/// gives back. A non-finite weight gives a non-finite scale, which the loader rejects.
pub fn quantize(values: &[f32]) -> (Vec<i8>, Vec<f16>) {
    let mut q = Vec::with_capacity(values.len());
    let scales = values
        .chunks(BLOCK)
        .map(|block| {
            let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = f16::from_f32(max / 127.0);
            let inv = if d.to_f32() > 0.0 {
                1.0 / d.to_f32()
            } else {
                0.0
            };
            q.extend(
                block
                    .iter()
                    .map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8),
            );
            d
        })
        .collect();
    (q, scales)
}

/// The weights `d_b · q_i` of Q8_0 values and their block scales.
pub fn dequantize(q: &[i8], scales: &[f16]) -> Vec<f32> {
    q.chunks(BLOCK)
        .zip(scales)
        .flat_map(|(block, d)| block.iter().map(move |&v| d.to_f32() * v as f32))
        .collect()
}

/// The values of an f32 or f16 tensor as f32 (`None` for another dtype).
pub fn float_values(view: &TensorView) -> Option<Vec<f32>> {
    match view.dtype() {
        Dtype::F32 => Some(
            view.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Dtype::F16 => Some(
            view.data()
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        _ => None,
    }
}

/// A safetensors file's bytes with its Q8_0 tensors widened to f32 (its other tensors and its
/// header metadata as they are), or `None` when it has none. The error says which tensor's
/// values and scales do not fit together.
pub fn widen(bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("not a safetensors checkpoint: {e}"))?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let tensors: HashMap<String, TensorView> = file.tensors().into_iter().collect();
    if tensors.values().all(|v| v.dtype() != Dtype::I8) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(tensors.len());
    for (name, view) in &tensors {
        if let Some(owner) = name.strip_suffix(SCALE_SUFFIX) {
            if tensors.get(owner).map(|v| v.dtype()) != Some(Dtype::I8) {
                return Err(format!("'{name}' scales no 8-bit tensor '{owner}'"));
            }
            continue;
        }
        if view.dtype() != Dtype::I8 {
            out.push(StoredTensor {
                name: name.clone(),
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                data: view.data().to_vec(),
            });
            continue;
        }
        let q: Vec<i8> = view.data().iter().map(|&b| b as i8).collect();
        let scales: Vec<f16> = match tensors.get(&format!("{name}{SCALE_SUFFIX}")) {
            Some(s) if s.dtype() == Dtype::F16 && s.shape() == [q.len().div_ceil(BLOCK)] => {
                float_values(s)
                    .unwrap()
                    .into_iter()
                    .map(f16::from_f32)
                    .collect()
            }
            Some(s) => {
                return Err(format!(
                    "8-bit tensor '{name}' ({} values) has scales of {:?} {:?}, expected f16 [{}]",
                    q.len(),
                    s.dtype(),
                    s.shape(),
                    q.len().div_ceil(BLOCK)
                ))
            }
            None => {
                return Err(format!(
                    "8-bit tensor '{name}' has no scales ('{name}{SCALE_SUFFIX}')"
                ))
            }
        };
        if let Some(bad) = scales.iter().find(|d| !d.to_f32().is_finite()) {
            return Err(format!(
                "8-bit tensor '{name}' has a non-finite scale ({bad})"
            ));
        }
        out.extend(encode(
            name,
            view.shape(),
            &dequantize(&q, &scales),
            StoredPrecision::F32,
        ));
    }
    let views = out.iter().map(|t| (t.name.clone(), t.view()));
    safetensors::serialize(views, meta.metadata().clone())
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_round_trips_within_half_a_step_of_each_block() {
        // 70 weights: two full blocks and a short one; the second block all zeros.
        let mut values: Vec<f32> = (0..70)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.013)
            .collect();
        values[32..64].iter_mut().for_each(|v| *v = 0.0);
        values[5] = -0.9;
        let (q, scales) = quantize(&values);
        assert_eq!((q.len(), scales.len()), (70, 3));
        assert_eq!(scales[1].to_f32(), 0.0);
        assert_eq!(q[5], -127);
        let back = dequantize(&q, &scales);
        for (b, (block, d)) in values.chunks(BLOCK).zip(&scales).enumerate() {
            let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (i, v) in block.iter().enumerate() {
                let err = (back[b * BLOCK + i] - v).abs();
                assert!(
                    err <= d.to_f32() / 2.0 + max * 1e-3,
                    "block {b} [{i}]: {v} -> {err}"
                );
            }
        }
        assert!(back[32..64].iter().all(|&v| v == 0.0));
    }

    fn file(tensors: &[StoredTensor]) -> Vec<u8> {
        let meta = HashMap::from([("model_config".to_string(), "x".to_string())]);
        safetensors::serialize(
            tensors.iter().map(|t| (t.name.clone(), t.view())),
            Some(meta),
        )
        .unwrap()
    }

    #[test]
    fn widen_gives_f32_for_8_bit_tensors_and_keeps_the_rest() {
        let w: Vec<f32> = (0..40).map(|i| (i as f32 - 20.0) / 40.0).collect();
        let mut tensors = encode("w", &[5, 8], &w, StoredPrecision::Q8);
        let bias = encode("b", &[8], &w[..8], StoredPrecision::Q8);
        assert_eq!(bias[0].dtype, Dtype::F16, "rank 1 stays f16");
        tensors.extend(bias.clone());
        assert_eq!(
            encode("w", &[5, 8], &w, StoredPrecision::F32)[0].data.len(),
            160
        );
        assert_eq!(tensors[0].data.len() + tensors[1].data.len(), 40 + 2 * 2);

        let wide = widen(&file(&tensors)).unwrap().unwrap();
        let (_, meta) = SafeTensors::read_metadata(&wide).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["model_config"], "x");
        let read = SafeTensors::deserialize(&wide).unwrap();
        assert_eq!(read.len(), 2);
        let wv = read.tensor("w").unwrap();
        assert_eq!((wv.dtype(), wv.shape()), (Dtype::F32, &[5usize, 8][..]));
        for (c, v) in wv.data().chunks_exact(4).zip(&w) {
            assert!(
                (f32::from_le_bytes(c.try_into().unwrap()) - v).abs() <= 0.5 / 127.0 / 2.0 + 1e-4
            );
        }
        assert_eq!(read.tensor("b").unwrap().data(), bias[0].data.as_slice());

        // A file without 8-bit tensors is left alone.
        assert_eq!(widen(&file(&bias)).unwrap(), None);
        // Values without their scales, or scales without their values, are named.
        let err = widen(&file(&tensors[..1])).unwrap_err();
        assert!(err.contains("'w' has no scales"), "{err}");
        let mut orphan = tensors.clone();
        orphan.push(StoredTensor {
            name: format!("v{SCALE_SUFFIX}"),
            ..tensors[1].clone()
        });
        let err = widen(&file(&orphan)).unwrap_err();
        assert!(err.contains("no 8-bit tensor 'v'"), "{err}");
    }
}
