//! One model for every piece of background work: the explorer's pipeline run, evidence,
//! export and full ablation, and the sweep's agents.
//!
//! - A [`Task`] is one piece of work on its own thread. It reports messages while it runs and
//!   always ends with exactly one [`Outcome`]: done, failed or cancelled. A panic in the work,
//!   or a thread that vanishes, becomes `Failed` with what is known; nothing stays "running".
//!   Dropping a task cancels it (the work sees the flag at its next check).
//! - A [`Server`] keeps expensive state (a loaded agent) on its own thread and answers
//!   requests. Requests have a kind; a newer request replaces a queued one of the same kind
//!   only (latest wins per kind: a neuron request never displaces a selection request), and a
//!   computation is told when a newer request of its kind makes it stale.
//!
//! Modelled on gitui's `AsyncSingleJob`: one generic job type, one instance per kind of work.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// An error from the work, as one line of text.
pub type WorkError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a task ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    Done(T),
    Failed(String),
    Cancelled,
}

/// What a task reports: messages while it runs, then its outcome.
#[derive(Debug)]
pub enum Update<M, T> {
    Msg(M),
    End(Outcome<T>),
}

/// What the work sees: a way to report, and the cancel flag.
pub struct Ctx<M> {
    send: Box<dyn Fn(M) -> bool + Send + Sync>,
    cancel: Arc<AtomicBool>,
}

impl<M> Ctx<M> {
    /// Reports a message; false when nobody listens any more.
    pub fn send(&self, msg: M) -> bool {
        (self.send)(msg)
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The flag the work's own loops check.
    pub fn cancel_flag(&self) -> &AtomicBool {
        &self.cancel
    }
}

/// A panic's payload as text.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

enum Wire<M, T> {
    Msg(M),
    End(Outcome<T>),
}

/// One piece of background work.
pub struct Task<M, T> {
    name: String,
    rx: Receiver<Wire<M, T>>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    ended: bool,
}

impl<M: Send + 'static, T: Send + 'static> Task<M, T> {
    /// Starts `work` on a thread named `name`. A thread that cannot be started is a task
    /// that has already failed, saying so.
    pub fn spawn<F>(name: &str, work: F) -> Task<M, T>
    where
        F: FnOnce(&Ctx<M>) -> Result<T, WorkError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Wire<M, T>>();
        let cancel = Arc::new(AtomicBool::new(false));
        let (wire, flag, label) = (tx.clone(), cancel.clone(), name.to_string());
        let spawned = std::thread::Builder::new().name(format!("saliency-{name}")).spawn(move || {
            let msgs = wire.clone();
            let ctx = Ctx { send: Box::new(move |m| msgs.send(Wire::Msg(m)).is_ok()), cancel: flag.clone() };
            let result = catch_unwind(AssertUnwindSafe(|| work(&ctx)));
            let outcome = match result {
                Ok(Ok(v)) => Outcome::Done(v),
                Ok(Err(_)) if flag.load(Ordering::Relaxed) => Outcome::Cancelled,
                Ok(Err(e)) => Outcome::Failed(crate::error_text(e.as_ref())),
                Err(p) => Outcome::Failed(format!("the {label} thread panicked: {}", panic_text(p.as_ref()))),
            };
            let _ = wire.send(Wire::End(outcome));
        });
        let handle = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                let _ = tx.send(Wire::End(Outcome::Failed(format!("cannot start the {name} thread: {e}"))));
                None
            }
        };
        Task { name: name.to_string(), rx, cancel, handle, ended: false }
    }

    /// Asks the work to stop at its next check.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Whether the outcome has not been received yet.
    pub fn running(&self) -> bool {
        !self.ended
    }

    /// Updates ready now (never blocks). After the outcome, nothing more comes.
    pub fn poll(&mut self) -> Vec<Update<M, T>> {
        let mut out = Vec::new();
        while !self.ended {
            match self.rx.try_recv() {
                Ok(w) => out.push(self.take(w)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => out.push(self.vanished()),
            }
        }
        out
    }

    /// The next update, waiting up to `timeout` (tests, headless use).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Update<M, T>> {
        if self.ended {
            return None;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(w) => Some(self.take(w)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(self.vanished()),
        }
    }

    /// Waits for the outcome, discarding messages (headless use).
    pub fn wait(mut self) -> Outcome<T> {
        loop {
            if let Some(Update::End(o)) = self.recv_timeout(Duration::from_secs(3600)) {
                return o;
            }
        }
    }

    fn take(&mut self, w: Wire<M, T>) -> Update<M, T> {
        match w {
            Wire::Msg(m) => Update::Msg(m),
            Wire::End(o) => {
                self.ended = true;
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                Update::End(o)
            }
        }
    }

    /// The thread went away without an outcome (it cannot panic past `catch_unwind`, but a
    /// process-level failure can still end it).
    fn vanished(&mut self) -> Update<M, T> {
        self.ended = true;
        Update::End(Outcome::Failed(format!("the {} thread ended without a result", self.name)))
    }
}

impl<M, T> Drop for Task<M, T> {
    fn drop(&mut self) {
        // An abandoned or replaced task stops at its next check.
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// A request to a [`Server`]: its kind decides which queued request it replaces.
pub trait Keyed: Send + 'static {
    type Kind: Ord + Copy + Send + std::fmt::Debug + 'static;
    fn kind(&self) -> Self::Kind;
}

/// What a server reports.
#[derive(Debug)]
pub enum Reply<I, R> {
    /// The state is loaded: what the caller should know about it.
    Ready(I),
    Answer(R),
    /// Loading failed, a computation panicked, or the thread vanished: the server is gone.
    Failed(String),
}

struct Queue<Q: Keyed> {
    pending: BTreeMap<Q::Kind, (u64, Q)>,
    stop: bool,
}

struct Shared<Q: Keyed> {
    queue: Mutex<Queue<Q>>,
    wake: Condvar,
    /// The newest request number per kind, read by computations to know they are stale.
    newest: Mutex<BTreeMap<Q::Kind, u64>>,
    counter: AtomicU64,
}

/// A long-lived worker with state, answering requests (latest wins per kind).
pub struct Server<Q: Keyed, I, R> {
    shared: Arc<Shared<Q>>,
    rx: Receiver<Reply<I, R>>,
    handle: Option<JoinHandle<()>>,
    gone: bool,
    name: String,
}

impl<Q: Keyed, I: Send + 'static, R: Send + 'static> Server<Q, I, R> {
    /// Starts a server: `load` builds the state (its `I` is reported as `Ready`), then each
    /// request is answered by `serve`, which may return None when `stale()` says to give up.
    pub fn spawn<S, L, F>(name: &str, load: L, serve: F) -> Server<Q, I, R>
    where
        L: FnOnce() -> Result<(S, I), WorkError> + Send + 'static,
        F: Fn(&S, &Q, &dyn Fn() -> bool) -> Option<R> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::<Q> { pending: BTreeMap::new(), stop: false }),
            wake: Condvar::new(),
            newest: Mutex::new(BTreeMap::new()),
            counter: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let (sh, tx2, label) = (shared.clone(), tx.clone(), name.to_string());
        let spawned = std::thread::Builder::new().name(format!("saliency-{name}")).spawn(move || {
            let loaded = match catch_unwind(AssertUnwindSafe(load)) {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    let _ = tx2.send(Reply::Failed(crate::error_text(e.as_ref())));
                    return;
                }
                Err(p) => {
                    let _ = tx2.send(Reply::Failed(format!("the {label} thread panicked: {}", panic_text(p.as_ref()))));
                    return;
                }
            };
            let (state, info) = loaded;
            if tx2.send(Reply::Ready(info)).is_err() {
                return;
            }
            while let Some((number, req)) = next_request(&sh) {
                let kind: Q::Kind = req.kind();
                let stale = || {
                    sh.queue.lock().map(|q| q.stop).unwrap_or(true)
                        || sh.newest.lock().map(|n| n.get(&kind).copied().unwrap_or(0) > number).unwrap_or(true)
                };
                match catch_unwind(AssertUnwindSafe(|| serve(&state, &req, &stale))) {
                    Ok(Some(r)) => {
                        if tx2.send(Reply::Answer(r)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(p) => {
                        let text = format!("the {label} thread panicked: {}", panic_text(p.as_ref()));
                        let _ = tx2.send(Reply::Failed(text));
                        return;
                    }
                }
            }
        });
        let handle = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                let _ = tx.send(Reply::Failed(format!("cannot start the {name} thread: {e}")));
                None
            }
        };
        Server { shared, rx, handle, gone: false, name: name.to_string() }
    }

    /// Queues a request; it replaces a queued request of the same kind, and marks a running
    /// computation of that kind stale.
    pub fn request(&self, req: Q) {
        let number = self.shared.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let kind = req.kind();
        if let Ok(mut n) = self.shared.newest.lock() {
            n.insert(kind, number);
        }
        if let Ok(mut q) = self.shared.queue.lock() {
            q.pending.insert(kind, (number, req));
        }
        self.shared.wake.notify_one();
    }

    /// Replies ready now (never blocks); a vanished thread is reported once as `Failed`.
    pub fn poll(&mut self) -> Vec<Reply<I, R>> {
        let mut out = Vec::new();
        if self.gone {
            return out;
        }
        loop {
            match self.rx.try_recv() {
                Ok(r) => {
                    let failed = matches!(r, Reply::Failed(_));
                    out.push(r);
                    if failed {
                        // the first word on why it went is the one to show
                        self.gone = true;
                        break;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.gone = true;
                    out.push(Reply::Failed(format!("the {} thread ended", self.name)));
                    break;
                }
            }
        }
        out
    }

    /// The next reply, waiting up to `timeout` (tests, benchmarks).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<Reply<I, R>> {
        if self.gone {
            return None;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(r) => {
                self.gone = matches!(r, Reply::Failed(_));
                Some(r)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.gone = true;
                Some(Reply::Failed(format!("the {} thread ended", self.name)))
            }
        }
    }
}

/// The next request to serve (lowest kind first), or None when the server should stop.
fn next_request<Q: Keyed>(shared: &Shared<Q>) -> Option<(u64, Q)> {
    let mut q = shared.queue.lock().ok()?;
    loop {
        if q.stop {
            return None;
        }
        if let Some(kind) = q.pending.keys().next().copied() {
            return q.pending.remove(&kind);
        }
        q = shared.wake.wait(q).ok()?;
    }
}

impl<Q: Keyed, I, R> Drop for Server<Q, I, R> {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.stop = true;
        }
        self.shared.wake.notify_all();
        // The thread finishes its current computation (told it is stale) and ends; it is not
        // joined, so dropping never blocks the UI.
        drop(self.handle.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end<M: Send + 'static, T: Send + 'static>(task: &mut Task<M, T>) -> Outcome<T> {
        loop {
            if let Some(Update::End(o)) = task.recv_timeout(Duration::from_secs(10)) {
                return o;
            }
        }
    }

    #[test]
    fn a_task_reports_then_ends_once() {
        let mut t: Task<u32, &str> = Task::spawn("test", |ctx| {
            for i in 0..3 {
                ctx.send(i);
            }
            Ok("done")
        });
        let mut msgs = Vec::new();
        let outcome = loop {
            match t.recv_timeout(Duration::from_secs(10)) {
                Some(Update::Msg(m)) => msgs.push(m),
                Some(Update::End(o)) => break o,
                None => panic!("no outcome"),
            }
        };
        assert_eq!(msgs, vec![0, 1, 2]);
        assert_eq!(outcome, Outcome::Done("done"));
        assert!(!t.running());
        assert!(t.poll().is_empty());
    }

    #[test]
    fn a_panic_becomes_a_failure_and_cancel_a_cancellation() {
        let mut t: Task<(), ()> = Task::spawn("boom", |_| panic!("kaboom"));
        match end(&mut t) {
            Outcome::Failed(e) => assert!(e.contains("boom thread panicked: kaboom"), "{e}"),
            o => panic!("{o:?}"),
        }
        let mut t: Task<(), ()> = Task::spawn("slow", |ctx| {
            while !ctx.cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err("stopped".into())
        });
        t.cancel();
        assert_eq!(end(&mut t), Outcome::Cancelled);
        let mut t: Task<(), ()> = Task::spawn("fails", |_| Err("no such file".into()));
        assert_eq!(end(&mut t), Outcome::Failed("no such file".into()));
    }

    #[derive(Debug)]
    struct Req(u8, u32);
    impl Keyed for Req {
        type Kind = u8;
        fn kind(&self) -> u8 {
            self.0
        }
    }

    #[test]
    fn the_latest_request_wins_per_kind_only() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = gate.clone();
        let mut s: Server<Req, (), (u8, u32)> = Server::spawn(
            "srv",
            || Ok(((), ())),
            move |_: &(), r: &Req, _: &dyn Fn() -> bool| {
                let _unused = g.lock();
                Some((r.0, r.1))
            },
        );
        assert!(matches!(s.recv_timeout(Duration::from_secs(10)), Some(Reply::Ready(()))));
        // The server blocks on the gate while these queue up: kind 1 twice, kind 2 once.
        s.request(Req(1, 10));
        std::thread::sleep(Duration::from_millis(50));
        s.request(Req(1, 11));
        s.request(Req(2, 20));
        s.request(Req(1, 12));
        drop(held);
        let mut got = Vec::new();
        while got.len() < 3 {
            match s.recv_timeout(Duration::from_secs(10)) {
                Some(Reply::Answer(a)) => got.push(a),
                other => panic!("{other:?}"),
            }
        }
        // The first kind-1 request was already running; of the queued ones, the newest kind-1
        // request replaced the older one and the kind-2 request was kept.
        assert_eq!(got, vec![(1, 10), (1, 12), (2, 20)]);
    }

    #[test]
    fn a_panicking_server_says_so() {
        let mut s: Server<Req, (), ()> =
            Server::spawn("srv", || Ok(((), ())), |_: &(), _: &Req, _: &dyn Fn() -> bool| panic!("bad request"));
        assert!(matches!(s.recv_timeout(Duration::from_secs(10)), Some(Reply::Ready(()))));
        s.request(Req(0, 0));
        match s.recv_timeout(Duration::from_secs(10)) {
            Some(Reply::Failed(e)) => assert!(e.contains("srv thread panicked: bad request"), "{e}"),
            other => panic!("{other:?}"),
        }
        let mut s: Server<Req, (), ()> = Server::spawn(
            "srv",
            || Err::<((), ()), WorkError>("cannot load".into()),
            |_: &(), _: &Req, _: &dyn Fn() -> bool| Some(()),
        );
        assert!(matches!(s.recv_timeout(Duration::from_secs(10)), Some(Reply::Failed(e)) if e == "cannot load"));
    }
}
