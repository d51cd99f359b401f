//! The cores a zone load may use. Loading and building a large zone is
//! one-off work on whichever blocking thread runs it, so threads are scoped
//! to the job (`std::thread::scope`) and no pool lives between loads.

use std::sync::Mutex;

/// More threads than this gain nothing: the phases are memory-bound.
const MAX_THREADS: usize = 8;

/// How many threads a load may use: the cores this process may run on.
/// Asked once: `available_parallelism` reads the cgroup files each time,
/// 3.5 % of a start that loads 10,000 catalog members from disk.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS)
    })
}

/// Runs `job` on every item of `items` over `threads` threads (the caller
/// is one of them), each thread taking the next item when it is free, and
/// returns the results in the order of the items. Each thread has its own
/// state, `init(thread number)`, returned too (in thread order).
pub fn run<I, W, R>(
    items: I,
    threads: usize,
    init: impl Fn(usize) -> W + Sync,
    job: impl Fn(&mut W, I::Item) -> R + Sync,
) -> (Vec<W>, Vec<R>)
where
    I: IntoIterator,
    I::IntoIter: Send,
    I::Item: Send,
    W: Send,
    R: Send,
{
    let items = items.into_iter();
    // No more threads than items.
    let threads = threads
        .min(items.size_hint().1.unwrap_or(usize::MAX))
        .max(1);
    let queue = Mutex::new(items.enumerate());
    let work = |t: usize, out: &mut Vec<(usize, R)>| {
        let mut state = init(t);
        loop {
            // A poisoned queue means another thread panicked: the scope
            // re-raises that panic, so this thread just stops.
            let next = match queue.lock() {
                Ok(mut q) => q.next(),
                Err(_) => None,
            };
            let Some((i, item)) = next else { break };
            out.push((i, job(&mut state, item)));
        }
        state
    };
    let mut states = Vec::with_capacity(threads.max(1));
    let mut done: Vec<(usize, R)> = Vec::new();
    if threads <= 1 {
        states.push(work(0, &mut done));
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (1..threads)
                .map(|t| {
                    let work = &work;
                    s.spawn(move || {
                        let mut out = Vec::new();
                        let state = work(t, &mut out);
                        (state, out)
                    })
                })
                .collect();
            states.push(work(0, &mut done));
            for h in handles {
                match h.join() {
                    Ok((state, out)) => {
                        states.push(state);
                        done.extend(out);
                    }
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
    done.sort_unstable_by_key(|(i, _)| *i);
    (states, done.into_iter().map(|(_, r)| r).collect())
}

/// `run` without per-thread state.
pub fn map<I, R>(items: I, threads: usize, job: impl Fn(I::Item) -> R + Sync) -> Vec<R>
where
    I: IntoIterator,
    I::IntoIter: Send,
    I::Item: Send,
    R: Send,
{
    run(items, threads, |_| (), |_, item| job(item)).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items() {
        for threads in [1, 2, 5] {
            let (states, out) = run(
                0..100u32,
                threads,
                |t| (t, 0usize),
                |(_, n), i| {
                    *n += 1;
                    i * 2
                },
            );
            assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
            assert_eq!(
                states.iter().map(|s| s.0).collect::<Vec<_>>(),
                (0..threads).collect::<Vec<_>>()
            );
            assert_eq!(states.iter().map(|s| s.1).sum::<usize>(), 100);
        }
        let mut v = vec![1, 2, 3];
        map(v.iter_mut(), 2, |x| *x += 1);
        assert_eq!(v, [2, 3, 4]);
    }
}
