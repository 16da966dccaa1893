//! Mixed precision: the libtorch autocast switches tch does not bind (compiled
//! from src/train/autocast_shim.cpp by build.rs) and fp16's gradient scaler.
//!
//! `precision: "bf16"` runs CUDA autocast with dtype bfloat16, or CPU autocast
//! (bfloat16) on a CPU with bf16 instructions; `"fp16"` CUDA autocast with
//! float16 and a [`GradScaler`]; a training step's [`with_autocast`] turns on
//! its device's autocast at whatever dtype is set.

use anyhow::{bail, Result};
use std::os::raw::c_int;
use tch::{Kind, Tensor};

extern "C" {
    fn minima_autocast_set_dtype(device: c_int, dtype: c_int) -> c_int;
    fn minima_autocast_get_dtype(device: c_int) -> c_int;
    fn minima_autocast_set_enabled(device: c_int, enabled: c_int) -> c_int;
    fn minima_autocast_enter(device: c_int) -> c_int;
    fn minima_autocast_exit(device: c_int, was: c_int);
}

/// c10::DeviceType codes (checked by static_assert in the shim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutocastDevice {
    Cpu = 0,
    Cuda = 1,
}

/// c10::ScalarType codes of the dtypes autocast takes (checked in the shim).
fn code(kind: Kind) -> Result<c_int> {
    Ok(match kind {
        Kind::Half => 5,
        Kind::Float => 6,
        Kind::BFloat16 => 15,
        other => bail!("autocast: no dtype {other:?}; float16, bfloat16 or float32"),
    })
}

fn kind(code: c_int) -> Result<Kind> {
    Ok(match code {
        5 => Kind::Half,
        6 => Kind::Float,
        15 => Kind::BFloat16,
        other => bail!("autocast: libtorch reports dtype code {other}"),
    })
}

/// The dtype autocast casts to on `device` (this thread's setting).
pub fn autocast_dtype(device: AutocastDevice) -> Result<Kind> {
    // SAFETY: the shim only reads a thread-local of libtorch and catches exceptions.
    kind(unsafe { minima_autocast_get_dtype(device as c_int) })
}

/// Sets the dtype autocast casts to on `device` for this thread.
pub fn set_autocast_dtype(device: AutocastDevice, dtype: Kind) -> Result<()> {
    // SAFETY: the shim writes a thread-local of libtorch and catches exceptions.
    if unsafe { minima_autocast_set_dtype(device as c_int, code(dtype)?) } != 0 {
        bail!("autocast: libtorch refused dtype {dtype:?} on {device:?}");
    }
    Ok(())
}

/// Turns autocast on `device` on or off for this thread; returns the previous state.
pub fn set_autocast_enabled(device: AutocastDevice, enabled: bool) -> Result<bool> {
    // SAFETY: as above.
    match unsafe { minima_autocast_set_enabled(device as c_int, c_int::from(enabled)) } {
        0 => Ok(false),
        1 => Ok(true),
        _ => bail!("autocast: libtorch refused to switch autocast on {device:?}"),
    }
}

/// Whether this CPU has bf16 dot-product instructions (AVX512-BF16; every CPU
/// with AMX has them too), where CPU bf16 autocast was measured faster than
/// float32 (docs/TRAINING.md); without them libtorch emulates bf16 and the same
/// autocast measured 5.2x slower.
pub fn cpu_has_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `f` under `device`'s autocast (at this thread's dtype for it), entering
/// and leaving it as `torch.autocast` does: nesting counted, the cast cache
/// cleared when the outermost region ends. (`tch::autocast` goes through
/// libtorch's deprecated switch, which warns on every step, even when off.)
pub fn with_autocast<T>(device: Option<AutocastDevice>, f: impl FnOnce() -> T) -> T {
    let Some(device) = device else {
        return f();
    };
    let device = device as c_int;
    // SAFETY: the shim switches thread-locals of libtorch and catches exceptions;
    // exit restores what enter found.
    let was = unsafe { minima_autocast_enter(device) };
    let out = f();
    unsafe { minima_autocast_exit(device, was) };
    out
}

/// torch.amp.GradScaler's dynamic loss scaling with its defaults: the loss is
/// multiplied by `scale` before backward; before each step the gradients are
/// divided by it, and a step whose gradients hold an inf or NaN is skipped and
/// halves the scale; 2000 finite steps in a row double it.
#[derive(Debug, Clone, PartialEq)]
pub struct GradScaler {
    pub scale: f64,
    /// Finite steps since the scale last changed (torch's `_growth_tracker`).
    pub good_steps: i64,
}

impl Default for GradScaler {
    fn default() -> Self {
        GradScaler {
            scale: GradScaler::INIT_SCALE,
            good_steps: 0,
        }
    }
}

impl GradScaler {
    pub const INIT_SCALE: f64 = 65536.0;
    pub const GROWTH_FACTOR: f64 = 2.0;
    pub const BACKOFF_FACTOR: f64 = 0.5;
    pub const GROWTH_INTERVAL: i64 = 2000;

    /// The loss to backpropagate: `loss · scale`.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self.scale
    }

    /// Divides every gradient by the scale in place (torch computes the inverse
    /// in float32, as here for float32 gradients); true when all are finite, so
    /// the step may be taken. One host read per step, as torch's `step` makes.
    pub fn unscale(&self, params: &[Tensor]) -> bool {
        let inverse = 1.0 / self.scale;
        let mut finite = Vec::new();
        for p in params {
            let mut g = p.grad();
            if !g.defined() {
                continue;
            }
            let _ = g.g_mul_scalar_(inverse);
            finite.push(g.isfinite().all());
        }
        finite.is_empty() || Tensor::stack(&finite, 0).all().int64_value(&[]) != 0
    }

    /// After a step was taken (`finite`) or skipped: back off at once, grow after
    /// `GROWTH_INTERVAL` finite steps in a row (torch's `_amp_update_scale_`).
    pub fn update(&mut self, finite: bool) {
        if finite {
            self.good_steps += 1;
            if self.good_steps == GradScaler::GROWTH_INTERVAL {
                self.scale *= GradScaler::GROWTH_FACTOR;
                self.good_steps = 0;
            }
        } else {
            self.scale *= GradScaler::BACKOFF_FACTOR;
            self.good_steps = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn the_shim_sets_and_reads_the_autocast_dtype() {
        // Thread-local in libtorch: this test's thread only.
        assert_eq!(autocast_dtype(AutocastDevice::Cuda).unwrap(), Kind::Half);
        set_autocast_dtype(AutocastDevice::Cuda, Kind::BFloat16).unwrap();
        assert_eq!(
            autocast_dtype(AutocastDevice::Cuda).unwrap(),
            Kind::BFloat16
        );
        set_autocast_dtype(AutocastDevice::Cuda, Kind::Half).unwrap();
        assert_eq!(autocast_dtype(AutocastDevice::Cuda).unwrap(), Kind::Half);
        assert_eq!(autocast_dtype(AutocastDevice::Cpu).unwrap(), Kind::BFloat16);
        assert!(set_autocast_dtype(AutocastDevice::Cuda, Kind::Int64).is_err());
    }

    /// Inside, the device's autocast is on (switching it on again reports it
    /// was) and the other device's is not; after, it is off again, and nested
    /// regions restore the outer state.
    #[test]
    fn with_autocast_enters_and_leaves_the_devices_autocast() {
        for (device, other) in [
            (AutocastDevice::Cuda, AutocastDevice::Cpu),
            (AutocastDevice::Cpu, AutocastDevice::Cuda),
        ] {
            let on = || set_autocast_enabled(device, true).unwrap();
            let other_on = || set_autocast_enabled(other, false).unwrap();
            assert_eq!(
                with_autocast(Some(device), || (on(), other_on())),
                (true, false)
            );
            assert!(!set_autocast_enabled(device, false).unwrap());
            assert!(!with_autocast(None, on));
            assert!(set_autocast_enabled(device, false).unwrap());
            let nested = with_autocast(Some(device), || (with_autocast(Some(device), on), on()));
            assert_eq!(nested, (true, true));
            assert!(!set_autocast_enabled(device, false).unwrap());
        }
    }

    #[test]
    fn the_shim_switches_cpu_autocast_which_then_runs_matmuls_in_bf16() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        assert!(!set_autocast_enabled(AutocastDevice::Cpu, true).unwrap());
        let inside = a.matmul(&a).kind();
        assert!(set_autocast_enabled(AutocastDevice::Cpu, false).unwrap());
        assert_eq!(inside, Kind::BFloat16);
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }

    fn with_grad(values: &[f32]) -> Tensor {
        let p = Tensor::zeros([values.len() as i64], (Kind::Float, Device::Cpu))
            .set_requires_grad(true);
        (&p * Tensor::from_slice(values))
            .sum(Kind::Float)
            .backward();
        p
    }

    #[test]
    fn unscale_divides_gradients_and_finds_infs_and_nans() {
        let s = GradScaler::default();
        let p = with_grad(&[65536.0, -131072.0]);
        assert!(s.unscale(std::slice::from_ref(&p)));
        assert_eq!(Vec::<f32>::try_from(p.grad()).unwrap(), [1.0, -2.0]);
        for bad in [f32::INFINITY, f32::NAN] {
            let q = with_grad(&[1.0, bad]);
            assert!(!s.unscale(&[p.shallow_clone(), q]));
        }
    }

    /// Under CPU autocast a layer opted into `stem_conv`'s float32 kernel
    /// leaves the convolution to libtorch, which autocast runs in bfloat16; the
    /// kernel itself would answer in float32 (this test fails without that
    /// guard in `stem_conv::takes`). Outside autocast it answers in float32.
    #[test]
    fn under_cpu_autocast_a_stem_kernel_layer_is_libtorchs_bf16_convolution() {
        use crate::models::layers::{Conv2d, Scope};
        use crate::models::ConvLayout;
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let names = std::cell::RefCell::new(Vec::new());
        let scope = Scope::new(vs.root(), &names, ConvLayout::ChannelsLast);
        let conv = Conv2d::new(&scope, 1, 8, 3, 1, 1, true)
            .unwrap()
            .with_stem_kernel();
        tch::manual_seed(0);
        let x = Tensor::randn([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let plain = conv.forward(&x);
        let cast = with_autocast(Some(AutocastDevice::Cpu), || conv.forward(&x));
        assert_eq!(plain.kind(), Kind::Float);
        assert_eq!(cast.kind(), Kind::BFloat16);
        // The same convolution, to bfloat16's 8 bits of mantissa.
        let err = (cast.to_kind(Kind::Float) - &plain)
            .abs()
            .max()
            .double_value(&[]);
        let scale = plain.abs().max().double_value(&[]);
        assert!(err <= 0.02 * scale, "{err} against {scale}");
    }

    #[test]
    fn scale_backs_off_on_overflow_and_grows_after_2000_finite_steps() {
        let mut s = GradScaler::default();
        assert_eq!(s.scale, 65536.0);
        s.update(false);
        assert_eq!((s.scale, s.good_steps), (32768.0, 0));
        for _ in 0..1999 {
            s.update(true);
        }
        assert_eq!((s.scale, s.good_steps), (32768.0, 1999));
        s.update(true);
        assert_eq!((s.scale, s.good_steps), (65536.0, 0));
        // An overflow resets the run of finite steps.
        for _ in 0..1500 {
            s.update(true);
        }
        s.update(false);
        for _ in 0..1999 {
            s.update(true);
        }
        assert_eq!(s.scale, 32768.0);
    }
}
