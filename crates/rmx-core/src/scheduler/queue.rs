//! One stream's queue and its worker thread. Nodes run strictly in queue order, one at
//! a time, by whoever holds the queue's `running` token: the worker thread, or a thread
//! blocked in `eval` that helps instead of waiting (which keeps single-stream `eval` as
//! cheap as running the graph inline). The worker is spawned on demand and exits after
//! an idle while, so streams cost no thread when unused.

use super::run::{inputs_ready, run_node};
use crate::array::Node;
use crate::device::Stream;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

const IDLE_EXIT: Duration = Duration::from_secs(2);

pub(crate) struct StreamQueue {
    pub stream: Stream,
    /// The thread that created the stream (`clear_streams` destroys a thread's own streams).
    pub owner: ThreadId,
    state: Mutex<QueueState>,
    /// The worker waits here for work.
    work: Condvar,
    /// `synchronize` waits here for `completed` to advance.
    progress: Condvar,
}

#[derive(Default)]
struct QueueState {
    tasks: VecDeque<Arc<Node>>,
    /// Someone is running this queue's front task.
    running: bool,
    worker_alive: bool,
    /// Destroyed by `clear_streams`: the worker drains what is queued, then exits.
    closed: bool,
    submitted: u64,
    completed: u64,
    sync_waiters: usize,
}

impl StreamQueue {
    pub fn new(stream: Stream) -> Arc<StreamQueue> {
        Arc::new(StreamQueue {
            stream,
            owner: std::thread::current().id(),
            state: Mutex::new(QueueState::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
        })
    }

    /// Appends claimed nodes (in dependency order). With `wake`, the worker starts on
    /// them; without, the caller promises to `help` until its own outputs are done.
    pub fn push(self: &Arc<Self>, nodes: impl IntoIterator<Item = Arc<Node>>, wake: bool) {
        let mut st = self.state.lock();
        let before = st.tasks.len();
        st.tasks.extend(nodes);
        st.submitted += (st.tasks.len() - before) as u64;
        if wake {
            self.wake(&mut st);
        }
    }

    /// Makes sure someone will run the queued tasks: notifies or spawns the worker.
    fn wake(self: &Arc<Self>, st: &mut MutexGuard<'_, QueueState>) {
        if st.tasks.is_empty() || st.running {
            // Whoever runs now wakes the worker when it stops with tasks left.
            return;
        }
        if st.worker_alive {
            self.work.notify_one();
            return;
        }
        let q = self.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rmx-stream-{}", self.stream.index))
            .stack_size(16 << 20)
            .spawn(move || q.worker());
        // Without a worker (no thread could be made) the tasks still run: eval helps.
        st.worker_alive = spawned.is_ok();
    }

    fn worker(self: Arc<Self>) {
        let mut st = self.state.lock();
        loop {
            if !st.running && !st.tasks.is_empty() {
                let task = st.tasks.pop_front().expect("non-empty");
                st.running = true;
                MutexGuard::unlocked(&mut st, || run_node(&task));
                st.running = false;
                self.finish_one(&mut st);
                continue;
            }
            if st.closed && st.tasks.is_empty() {
                break;
            }
            let timed_out = self.work.wait_for(&mut st, IDLE_EXIT).timed_out();
            if timed_out && st.tasks.is_empty() && !st.running {
                break;
            }
        }
        st.worker_alive = false;
    }

    fn finish_one(&self, st: &mut MutexGuard<'_, QueueState>) {
        st.completed += 1;
        if st.sync_waiters > 0 {
            self.progress.notify_all();
        }
    }

    /// How many tasks are queued.
    pub fn pending(&self) -> usize {
        self.state.lock().tasks.len()
    }

    /// Runs queued tasks on the calling thread while nobody else does, until `done()`
    /// (checked after each task) or the queue is empty. A task whose input another
    /// stream is still computing is left to the worker thread (woken for it): helpers
    /// run on rayon's pool, where waiting could deadlock (see `run::wait_for_data`). Returns
    /// whether it ran anything.
    pub fn help(self: &Arc<Self>, done: &dyn Fn() -> bool) -> bool {
        let mut st = self.state.lock();
        if st.running || st.tasks.is_empty() {
            return false;
        }
        st.running = true;
        let mut ran = false;
        while let Some(task) = st.tasks.front() {
            if !inputs_ready(task) {
                st.running = false;
                self.wake(&mut st);
                if st.worker_alive {
                    return ran;
                }
                // no worker thread could be made: run it here, waiting
                st.running = true;
            }
            let task = st.tasks.pop_front().expect("non-empty");
            ran = true;
            let finished = MutexGuard::unlocked(&mut st, || {
                run_node(&task);
                drop(task);
                done()
            });
            self.finish_one(&mut st);
            if finished {
                break;
            }
        }
        st.running = false;
        self.wake(&mut st);
        ran
    }

    /// Whether nobody runs the queue and its front task could run now.
    fn runnable(st: &QueueState) -> bool {
        !st.running && st.tasks.front().is_some_and(|t| inputs_ready(t))
    }

    /// Waits until every task submitted before the call has run, helping if it can.
    pub fn synchronize(self: &Arc<Self>) {
        let target = self.state.lock().submitted;
        loop {
            self.help(&|| false);
            let mut st = self.state.lock();
            if st.completed >= target {
                return;
            }
            if Self::runnable(&st) {
                continue;
            }
            st.sync_waiters += 1;
            self.progress.wait(&mut st);
            st.sync_waiters -= 1;
        }
    }

    /// Marks the stream destroyed; queued work still runs.
    pub fn close(self: &Arc<Self>) {
        let mut st = self.state.lock();
        st.closed = true;
        if st.worker_alive {
            self.work.notify_one();
        } else {
            self.wake(&mut st);
        }
    }
}
