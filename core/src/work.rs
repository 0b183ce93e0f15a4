//! Job handling: what a worker does with each queue message. Returns follow-up jobs for the
//! caller (the apalis wrapper) to push, so this module needs no queue.

use crate::Core;
use crate::db::DbError;
use crate::inbox;
use crate::jobs::Job;

#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Db(#[from] DbError),
}

pub async fn handle(core: &Core, job: Job) -> Result<Vec<Job>, WorkError> {
    match job {
        Job::DispatchInbox { id } => dispatch(core, id).await,
        Job::ExecuteRun { .. } => Ok(Vec::new()),
    }
}

async fn dispatch(core: &Core, id: i64) -> Result<Vec<Job>, WorkError> {
    let lease = core.lease();
    let Some(item) = core.db(move |c| inbox::claim(c, id, lease)).await? else {
        return Ok(Vec::new());
    };
    core.db(move |c| inbox::finish(c, item.id, None)).await?;
    Ok(Vec::new())
}
