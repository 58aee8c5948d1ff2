//! What the HTTP layer needs from a model: [`Generator`], implemented by
//! `runtime::scheduler::Scheduler` (and by test doubles, so the routes can
//! be tested without loading a model).

pub use runtime::scheduler::{Job, JobEvent, JobInput, JobSummary, Scheduler, Sink, SubmitError};

/// A loaded model that takes jobs.
pub trait Generator: Send + Sync + 'static {
    /// Queues a job; events reach `sink` on the generator's thread, and a
    /// `false` from it cancels the job. Blocking (tokenizes, preprocesses).
    fn submit(&self, job: Job, sink: Sink) -> Result<(), SubmitError>;
    /// Context capacity in tokens.
    fn max_len(&self) -> usize;
    /// Whether the model takes images.
    fn has_vision(&self) -> bool;
    /// The name `/v1/models` lists and responses carry.
    fn model_name(&self) -> &str;
    /// Refuses new jobs and cancels the running ones. Blocking.
    fn shutdown(&self);
}

impl Generator for Scheduler {
    fn submit(&self, job: Job, sink: Sink) -> Result<(), SubmitError> {
        Scheduler::submit(self, job, sink)
    }
    fn max_len(&self) -> usize {
        Scheduler::max_len(self)
    }
    fn has_vision(&self) -> bool {
        Scheduler::has_vision(self)
    }
    fn model_name(&self) -> &str {
        Scheduler::model_name(self)
    }
    fn shutdown(&self) {
        Scheduler::shutdown(self)
    }
}

/// A generator served under another name (`lfm2vl serve
/// --served-model-name`, or a hub id instead of its snapshot folder's name).
pub struct Renamed<G> {
    pub inner: G,
    pub name: String,
}

impl<G: Generator> Generator for Renamed<G> {
    fn submit(&self, job: Job, sink: Sink) -> Result<(), SubmitError> {
        self.inner.submit(job, sink)
    }
    fn max_len(&self) -> usize {
        self.inner.max_len()
    }
    fn has_vision(&self) -> bool {
        self.inner.has_vision()
    }
    fn model_name(&self) -> &str {
        &self.name
    }
    fn shutdown(&self) {
        self.inner.shutdown()
    }
}
