//! The only place that knows which backends exist: the CPU backend (burn-flex) is always
//! built; `wgpu` (WebGPU/Vulkan/Metal) and `cuda` are cargo features. `--backend` picks one at
//! run time and the work runs generically over it; `--precision` (GPU backends only: the CPU
//! computes in f32) is checked against the devices here and applied by the work.

use burn::prelude::Backend;
use learner::precision::Precision;

/// Backends a user can ask for with `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Multi-threaded CPU (burn-flex); always available.
    Cpu,
    /// WebGPU through wgpu (Vulkan/Metal/DX12, or a software adapter); feature `wgpu`.
    Wgpu,
    /// NVIDIA CUDA; feature `cuda`.
    Cuda,
}

/// Work that runs on any backend.
pub trait BackendTask {
    type Output;
    fn run<B: Backend>(self, device: B::Device, kind: BackendKind) -> anyhow::Result<Self::Output>;
}

/// Work that runs on several devices of one backend (data-parallel training).
pub trait DevicesTask {
    type Output;
    fn run<B: Backend>(
        self,
        devices: Vec<B::Device>,
        kind: BackendKind,
    ) -> anyhow::Result<Self::Output>;
}

/// A one-device task as a several-devices task on its first device.
struct One<T>(T);

impl<T: BackendTask> DevicesTask for One<T> {
    type Output = T::Output;
    fn run<B: Backend>(
        self,
        devices: Vec<B::Device>,
        kind: BackendKind,
    ) -> anyhow::Result<T::Output> {
        let device = devices.into_iter().next().expect("one device at least");
        self.0.run::<B>(device, kind)
    }
}

/// Runs `task` on the backend, device and precision of `args`.
pub fn run_on<T: BackendTask>(args: &BackendArgs, task: T) -> anyhow::Result<T::Output> {
    run_on_devices(args, &[args.device], One(task))
}

/// Runs `task` on the backend and precision of `args`, devices `indices` (on the CPU every
/// index is the one multi-threaded CPU device: each part of a batch runs in its own thread,
/// which keeps the cores busier than one pass; see `learner::train::setup::cpu_parts`).
pub fn run_on_devices<T: DevicesTask>(
    args: &BackendArgs,
    indices: &[usize],
    task: T,
) -> anyhow::Result<T::Output> {
    anyhow::ensure!(!indices.is_empty(), "no device given");
    let precision = args.precision;
    match args.backend {
        BackendKind::Cpu => {
            anyhow::ensure!(
                precision == Precision::F32,
                "--precision {precision}: the CPU backend computes in f32 only (half precision \
                 is for --backend wgpu or cuda)"
            );
            task.run::<burn::backend::Flex>(vec![Default::default(); indices.len()], args.backend)
        }
        BackendKind::Wgpu => run_wgpu(indices, precision, task),
        BackendKind::Cuda => run_cuda(indices, precision, task),
    }
}

#[cfg(feature = "wgpu")]
fn run_wgpu<T: DevicesTask>(
    indices: &[usize],
    precision: Precision,
    task: T,
) -> anyhow::Result<T::Output> {
    use burn::backend::wgpu::{Wgpu, WgpuDevice};
    let devices = indices
        .iter()
        .map(|&i| match i {
            0 => WgpuDevice::DefaultDevice,
            i => WgpuDevice::DiscreteGpu(i),
        })
        .collect();
    run_gpu::<Wgpu, T>(
        devices,
        precision,
        BackendKind::Wgpu,
        "WebGPU adapter",
        task,
    )
}

#[cfg(not(feature = "wgpu"))]
fn run_wgpu<T: DevicesTask>(_: &[usize], _: Precision, _: T) -> anyhow::Result<T::Output> {
    anyhow::bail!("this binary was built without WebGPU support; rebuild with `--features wgpu`")
}

#[cfg(feature = "cuda")]
fn run_cuda<T: DevicesTask>(
    indices: &[usize],
    precision: Precision,
    task: T,
) -> anyhow::Result<T::Output> {
    use burn::backend::cuda::{Cuda, CudaDevice};
    let devices = indices.iter().map(|&i| CudaDevice::new(i)).collect();
    run_gpu::<Cuda, T>(devices, precision, BackendKind::Cuda, "CUDA device", task)
}

/// Runs `task` on GPU `devices` once each is [`usable`] in `precision`.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn run_gpu<B: Backend, T: DevicesTask>(
    devices: Vec<B::Device>,
    precision: Precision,
    kind: BackendKind,
    what: &str,
    task: T,
) -> anyhow::Result<T::Output> {
    for device in &devices {
        usable::<B>(device, precision, what)?;
    }
    task.run::<B>(devices, kind)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<T: DevicesTask>(_: &[usize], _: Precision, _: T) -> anyhow::Result<T::Output> {
    anyhow::bail!("this binary was built without CUDA support; rebuild with `--features cuda`")
}

/// Runs one tiny computation on `device`, so that a missing driver, library or adapter is one
/// clear error (with the backend's own reason) instead of a panic in the middle of the work;
/// a device without `precision`'s arithmetic is a clear error too.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn usable<B: Backend>(device: &B::Device, precision: Precision, what: &str) -> anyhow::Result<()> {
    use std::sync::{Arc, Mutex};
    let reason = Arc::new(Mutex::new(None::<String>));
    let hook = std::panic::take_hook();
    let first = reason.clone();
    // The backend panics (often in its own device thread); keep the first message as the reason.
    std::panic::set_hook(Box::new(move |info| {
        let mut first = first.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()));
            *first = msg;
        }
    }));
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        learner::precision::check_supported::<B>(device, precision).map(|()| {
            burn::tensor::Tensor::<B, 1>::ones([4], device)
                .sum()
                .into_scalar()
        })
    }));
    std::panic::set_hook(hook);
    match probe {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            let reason = reason.lock().unwrap_or_else(|e| e.into_inner()).take();
            anyhow::bail!(
                "no usable {what} {device:?}: {}",
                reason.unwrap_or_else(|| "the backend failed to start".into())
            )
        }
    }
}

/// `--backend` / `--device` arguments shared by every command that computes.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// Where to compute.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendKind,
    /// Device index for GPU backends (0 = default device).
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Float precision on GPU backends: f32, f16 or bf16 (parameters, activations and
    /// optimizer state; f16 training scales its loss dynamically). The CPU computes in f32.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
}

impl BackendArgs {
    /// A clear error when `--precision` asks `command`, which computes in f32 only, for less.
    pub fn f32_only(&self, command: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.precision == Precision::F32,
            "`{command}` computes in f32 only; --precision {} applies to train, eval, transcribe, \
             translate and bench decode",
            self.precision
        );
        Ok(())
    }
}
