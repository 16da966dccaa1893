//! The engine's threads besides the caller's, kept for the engine's lifetime: a
//! step hands each thread its share and waits for all of them.
//!
//! Why kept: an mlp step takes about 350 µs on two threads, where starting and
//! joining a thread each step is a noticeable share; with kept threads (each
//! gathering its own rows as well) the step went from about 450 to 350 µs
//! (docs/PERFORMANCE.md). Each thread spins briefly after its share, long
//! enough to catch the next hand-out (a step hands out its rows, then its SGD
//! update), then sleeps until woken. libtorch's own workers are held
//! at one thread while the engine has a crew (train/dense/mod.rs), so the
//! spinning takes no core libtorch needs.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a thread spins for the next share before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// The work of one hand-out: called once per thread with the thread's number
/// (0 on the caller's thread, 1.. on the crew's).
type Work<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    /// Bumped by every hand-out (and by the drop, with `quit` set).
    posted: AtomicUsize,
    /// The current hand-out's `Work`, behind a thin pointer to the caller's stack.
    work: AtomicPtr<()>,
    /// Crew threads done with the current hand-out.
    done: AtomicUsize,
    panicked: AtomicBool,
    quit: AtomicBool,
}

pub(super) struct Crew {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Crew {
    /// A crew of `helpers` threads besides the caller's.
    pub(super) fn new(helpers: usize) -> Crew {
        let shared = Arc::new(Shared {
            posted: AtomicUsize::new(0),
            work: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            quit: AtomicBool::new(false),
        });
        let threads = (1..=helpers)
            .map(|k| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("minima-dense-{k}"))
                    .spawn(move || serve(&shared, k))
                    .expect("the OS starts a thread for the dense engine")
            })
            .collect();
        Crew { shared, threads }
    }

    /// Threads in all, the caller's included.
    pub(super) fn size(&self) -> usize {
        self.threads.len() + 1
    }

    /// Runs `work(k)` for every k in 0..size(), 0 on this thread and the others
    /// on the crew's, and returns when all have returned.
    pub(super) fn run(&self, work: Work) {
        if self.threads.is_empty() {
            return work(0);
        }
        let s = &self.shared;
        s.done.store(0, Ordering::Relaxed);
        // The pointer stays valid while the crew uses it: this function returns
        // (or unwinds) only after every crew thread has finished with it.
        let handle: &Work = &work;
        s.work
            .store(handle as *const Work as *mut (), Ordering::Relaxed);
        s.posted.fetch_add(1, Ordering::Release);
        for t in &self.threads {
            t.thread().unpark();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| work(0)));
        let started = Instant::now();
        while s.done.load(Ordering::Acquire) < self.threads.len() {
            if started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a dense-engine thread panicked");
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::Relaxed);
        self.shared.posted.fetch_add(1, Ordering::Release);
        for t in self.threads.drain(..) {
            t.thread().unpark();
            // A crew thread catches its work's panics, so joining cannot fail.
            let _ = t.join();
        }
    }
}

/// A crew thread: waits for each hand-out, does its share, reports it done.
fn serve(s: &Shared, k: usize) {
    let mut seen = 0;
    loop {
        let started = Instant::now();
        let mut posted = s.posted.load(Ordering::Acquire);
        while posted == seen {
            if started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                // An unpark between the load and here makes park return at once.
                std::thread::park();
            }
            posted = s.posted.load(Ordering::Acquire);
        }
        seen = posted;
        if s.quit.load(Ordering::Relaxed) {
            return;
        }
        // Safety: `Crew::run` stored a pointer to its `Work`, which outlives
        // this use: it waits for `done` to count this thread before returning.
        let work = unsafe { *(s.work.load(Ordering::Relaxed) as *const Work) };
        if catch_unwind(AssertUnwindSafe(|| work(k))).is_err() {
            s.panicked.store(true, Ordering::Relaxed);
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_thread_does_its_share_of_every_hand_out() {
        let crew = Crew::new(2);
        assert_eq!(crew.size(), 3);
        let seen = Mutex::new(Vec::new());
        for round in 0..1000 {
            crew.run(&|k| seen.lock().unwrap().push((round, k)));
            let mut now = std::mem::take(&mut *seen.lock().unwrap());
            now.sort();
            assert_eq!(now, vec![(round, 0), (round, 1), (round, 2)]);
        }
    }

    #[test]
    fn a_thread_that_slept_wakes_for_the_next_hand_out() {
        let crew = Crew::new(1);
        let count = AtomicUsize::new(0);
        crew.run(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        std::thread::sleep(SPIN * 20);
        crew.run(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn a_panic_in_a_share_reaches_the_caller_after_every_thread_is_done() {
        let crew = Crew::new(1);
        let finished = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            crew.run(&|k| {
                if k == 1 {
                    panic!("share {k}");
                }
                std::thread::sleep(Duration::from_millis(5));
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 1);
        // The crew still works afterwards.
        crew.run(&|_| {
            finished.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(finished.load(Ordering::Relaxed), 3);
    }
}
