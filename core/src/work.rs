//! Job handling: what a worker does with each queue message. Returns follow-up jobs for the
//! caller (the apalis wrapper) to push, so this module needs no queue.

use crate::Core;
use crate::db::DbError;
use crate::jobs::Job;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Db(#[from] DbError),
}

pub async fn handle(core: &Core, job: Job) -> Result<Vec<Job>, WorkError> {
    Ok(match job {
        Job::DispatchInbox { id } => crate::engine::dispatch::dispatch(core, id).await?,
        Job::ExecuteRun { id } => crate::engine::execute::execute(core, id).await?,
    })
}
