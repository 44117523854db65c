//! The float precision a model computes in (`--precision f32|f16|bf16`), and the dynamic loss
//! scaling that f16 training needs.
//!
//! Mixed precision as fairseq's `--fp16` / `--bf16`: the parameters and Adam's moments stay f32
//! (the master weights, checkpoints and exact resume unchanged); each forward pass runs on a
//! half-precision cast of the parameters ([`cast_module`]) and of the input features, every
//! tensor the model makes on the way follows its input's type, and losses and gradient norms
//! are summed in f32 (fairseq's `log_softmax(logits.float())`: in f16 a batch's summed
//! label-smoothing term alone exceeds 65504). f16 scales its loss ([`LossScaler`]); bf16, with f32's
//! exponent range, needs no scaling. Decoding casts the loaded model once.

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{LearnerError, Result};

/// The float type a model computes in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats: the default, and the only precision of the CPU backend.
    #[default]
    F32,
    /// IEEE half precision (5-bit exponent): training needs loss scaling ([`LossScaler`]).
    F16,
    /// bfloat16 (f32's 8-bit exponent, 7-bit mantissa): no loss scaling needed.
    Bf16,
}

impl Precision {
    /// Burn's float type for this precision.
    pub fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
            Precision::Bf16 => FloatDType::BF16,
        }
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Precision::F32),
            "f16" | "fp16" => Ok(Precision::F16),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!(
                "unknown precision '{s}' (expected f32, f16 or bf16)"
            )),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

/// A clear error when `device` has no arithmetic in `precision` (f32 always passes).
pub fn check_supported<B: Backend>(device: &B::Device, precision: Precision) -> Result<()> {
    if precision == Precision::F32 || B::supports_dtype(device, precision.dtype().into()) {
        return Ok(());
    }
    Err(LearnerError::Config(format!(
        "--precision {precision}: device {device:?} has no {precision} arithmetic; use f32{}",
        if precision == Precision::Bf16 {
            " or f16"
        } else {
            ""
        }
    )))
}

/// Casts every float parameter of `module` to `precision`. Under autodiff the casts are part of
/// the graph, so a forward pass through the cast copy sends f32 gradients to the original (f32
/// master) parameters: fairseq's `--fp16` / `--bf16` without a second copy to keep in sync.
pub fn cast_module<B: Backend, M: Module<B>>(module: M, precision: Precision) -> M {
    struct Cast(FloatDType);
    impl<B: Backend> ModuleMapper<B> for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, tensor.cast(self.0), mapper)
        }
    }
    if precision == Precision::F32 {
        return module;
    }
    module.map(&mut Cast(precision.dtype()))
}

/// Dynamic loss scaling for f16 training (fairseq's `DynamicLossScaler`, Micikevicius et al.
/// 2018): the loss is multiplied by `scale` before the backward pass so that small gradients
/// survive f16's narrow range, and the gradients are divided by it before clipping. An update
/// whose gradients overflow (a non-finite norm) is skipped and the scale halved; after `window`
/// updates without overflow it doubles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScaler {
    pub scale: f64,
    /// Updates since the last overflow (or the last doubling).
    pub clean: u64,
    pub window: u64,
}

impl LossScaler {
    /// fairseq's `--fp16-init-scale`.
    pub const INIT_SCALE: f64 = 128.0;
    /// fairseq's `--min-loss-scale`: below it, the gradients overflow whatever the scale.
    pub const MIN_SCALE: f64 = 1e-4;

    /// fairseq's default window: `2^14 / (devices · update_freq)` updates.
    pub fn new(devices: usize, update_freq: usize) -> Self {
        Self {
            scale: Self::INIT_SCALE,
            clean: 0,
            window: ((1u64 << 14) / (devices * update_freq).max(1) as u64).max(1),
        }
    }

    /// Records an update's outcome: `overflow` halves the scale (an error once it falls below
    /// [`Self::MIN_SCALE`]); a full window of clean updates doubles it.
    pub fn record(&mut self, overflow: bool) -> std::result::Result<(), String> {
        if overflow {
            self.scale /= 2.0;
            self.clean = 0;
            if self.scale < Self::MIN_SCALE {
                return Err(format!(
                    "f16 gradients overflow at every loss scale (now {:e}); train in bf16 or f32",
                    self.scale
                ));
            }
        } else {
            self.clean += 1;
            if self.clean >= self.window {
                self.scale *= 2.0;
                self.clean = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    #[test]
    fn parses_and_prints_every_precision() {
        for p in [Precision::F32, Precision::F16, Precision::Bf16] {
            assert_eq!(p.to_string().parse::<Precision>(), Ok(p));
        }
        assert_eq!("FP16".parse::<Precision>(), Ok(Precision::F16));
        assert!("f8".parse::<Precision>().unwrap_err().contains("f8"));
    }

    #[test]
    fn loss_scale_halves_on_overflow_and_doubles_after_a_clean_window() {
        let mut s = LossScaler::new(2, 4);
        assert_eq!((s.scale, s.window), (128.0, 2048));
        s.record(true).unwrap();
        assert_eq!((s.scale, s.clean), (64.0, 0));
        for _ in 0..2047 {
            s.record(false).unwrap();
        }
        assert_eq!((s.scale, s.clean), (64.0, 2047));
        s.record(false).unwrap();
        assert_eq!((s.scale, s.clean), (128.0, 0));
        let mut overflowing = 0;
        let err = loop {
            match s.record(true) {
                Ok(()) => overflowing += 1,
                Err(e) => break e,
            }
        };
        // 128 / 2^20 >= 1e-4 > 128 / 2^21.
        assert_eq!(overflowing, 20);
        assert!(err.contains("overflow"), "{err}");
    }

    #[test]
    fn casts_every_parameter_and_sends_f32_gradients_to_the_master() {
        use burn::backend::Autodiff;
        use burn::nn::{Linear, LinearConfig};
        type B = Autodiff<burn::backend::Flex>;
        let device = Default::default();
        let master: Linear<B> = LinearConfig::new(3, 2).init(&device);
        // Materialise the lazily initialised parameters, so the clone below shares them.
        let _ = (master.weight.val(), master.bias.as_ref().map(|b| b.val()));
        let half = cast_module(master.clone(), Precision::F16);
        assert_eq!(half.weight.val().dtype(), DType::F16);
        assert_eq!(half.bias.as_ref().unwrap().val().dtype(), DType::F16);
        let x = Tensor::<B, 2>::from_floats([[1.0, -2.0, 0.5]], &device).cast(FloatDType::F16);
        let grads = half.forward(x).cast(FloatDType::F32).sum().backward();
        let g = master
            .weight
            .val()
            .grad(&grads)
            .expect("the master gets the gradient");
        assert_eq!(g.dtype(), DType::F32);
        let g: Vec<f32> = g.into_data().to_vec().unwrap();
        assert_eq!(g, vec![1.0, 1.0, -2.0, -2.0, 0.5, 0.5]);
        assert!(check_supported::<burn::backend::Flex>(&device, Precision::Bf16).is_ok());
    }
}
