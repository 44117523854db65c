//! Running a decode step on rayon's pool with a second thread kept awake.
//!
//! A decode step alternates short parallel parts (a weight product, the attention over the
//! cache) with serial ones of tens of microseconds (RoPE, LayerNorm, the cache update, burn's
//! small ops). rayon puts an idle thread to sleep within about that time, so each parallel part
//! began by waking it (futex calls, and a halted virtual CPU to bring back): at the paper's dims,
//! batch 8, 2 threads, ~13 futex calls a step and ~15 % of the step in the kernel. [`awake`]
//! keeps one more pool thread busy-waiting for the step's work instead, the way OpenMP's threads
//! spin between parallel regions. The attention layers' fused decode step, the decoder's step
//! (`st_model`) and the learner's batched decoding (encoder and beam search) run inside it.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::prelude::Backend;

/// Runs `f` on a pool thread while a second pool thread runs pending pool work (so it still
/// steals `f`'s parallel jobs) until `f` returns or unwinds. Calls nest (an inner call's helper
/// is picked up by the outer one's thread). Meant for the CPU backend: it occupies a core for
/// the duration of `f`.
pub fn awake<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let done = &AtomicBool::new(false);
    rayon::scope(|s| {
        let owner = rayon::current_thread_index();
        s.spawn(move |_| keep_busy(done, owner));
        // Set when `f` returns or unwinds, so the scope can end either way.
        let _done = SetOnDrop(done);
        f()
    })
}

/// [`awake`] on the CPU backend; on other backends `f` runs on this thread (their ops run on the
/// device, not on the pool).
pub fn awake_on<B: Backend, T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if crate::cpu::on_cpu::<B>() {
        awake(f)
    } else {
        f()
    }
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs pending pool work until `done`. Returns at once on `f`'s own thread (`owner`), which
/// only picks it up when it waits for work of its own, so it never holds up a `join` there.
fn keep_busy(done: &AtomicBool, owner: Option<usize>) {
    if rayon::current_thread_index() == owner {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if let Some(rayon::Yield::Idle) = rayon::yield_now() {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    use super::*;

    /// `f`'s value comes back with its parallel work done, nested calls too, and a panicking `f`
    /// ends the call (the helper stops) instead of hanging it.
    #[test]
    fn returns_with_the_work_done_and_ends_on_a_panic() {
        let sum = awake(|| (0..10_000u64).into_par_iter().sum::<u64>());
        assert_eq!(sum, 49_995_000);
        let nested = awake(|| awake(|| (0..100u64).into_par_iter().map(|x| x * 2).sum::<u64>()));
        assert_eq!(nested, 9_900);
        let panicked = std::panic::catch_unwind(|| awake(|| -> u64 { panic!("a failing step") }));
        assert!(panicked.is_err());
    }
}
