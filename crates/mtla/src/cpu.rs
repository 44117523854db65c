//! Which backend a generic `B` runs on, for the few places that take a CPU-specific route.

use std::any::TypeId;

use burn::backend::flex::FlexDevice;
use burn::prelude::*;

/// Whether `B` is the CPU backend (burn-flex), with or without autodiff (both share its device).
pub fn on_cpu<B: Backend>() -> bool {
    TypeId::of::<B::Device>() == TypeId::of::<FlexDevice>()
}
