//! Running bundles as dispatch sees them: every delivery asks which bundles of its provider
//! listen, and each run stores its bundle's definition. Parsing the step lists and writing the
//! snapshot again for every delivery is most of that work, and bundles change rarely, so each
//! process keeps them parsed, with their snapshot written once.
//!
//! Kept without a time limit, so an edit must be noticed at once and in every process (the
//! admin stops a bundle in the web process; queue-mode workers must stop starting its runs).
//! So each look-up still reads the bundles' ids and edit stamps (a narrow, indexed read, no
//! definitions), and reloads the definitions when those differ from what is kept: every edit
//! of a bundle moves its `updated_at` (see `touch`), starting or stopping one changes the set
//! of running ids, deleting one removes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{Bundle, BundleState};
use crate::db::schema::bundles;
use crate::db::{AnyConnection, DbError};

/// A running bundle with the definition its runs store.
#[derive(Debug)]
pub struct Listening {
    pub bundle: Bundle,
    pub snapshot: Snapshot,
}

/// What a run keeps of its bundle: the definition as it was when the run was created, so an
/// edit never changes a run already on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub bundle_id: i64,
    pub json: String,
}

impl Bundle {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            bundle_id: self.id,
            json: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

/// Ids and edit stamps of a provider's running bundles, in id order.
type Stamps = Vec<(i64, NaiveDateTime)>;

struct Entry {
    stamps: Stamps,
    bundles: Arc<[Listening]>,
}

#[derive(Default)]
pub struct BundleCache {
    by_source: Mutex<HashMap<i64, Entry>>,
}

impl BundleCache {
    /// The running bundles whose source is `provider_id`, as the database has them now.
    pub fn running_for_source(
        &self,
        conn: &mut AnyConnection,
        provider_id: i64,
    ) -> Result<Arc<[Listening]>, DbError> {
        let stamps: Stamps = running(provider_id)
            .select((bundles::id, bundles::updated_at))
            .load(conn)?;
        if let Some(kept) = self.kept(provider_id, &stamps) {
            return Ok(kept);
        }
        let loaded = super::running_for_source(conn, provider_id)?;
        // Keyed by what was loaded, not by the stamps read before: an edit in between is then
        // seen by the next look-up.
        let stamps = loaded.iter().map(|b| (b.id, b.updated_at)).collect();
        let bundles: Arc<[Listening]> = loaded
            .into_iter()
            .map(|bundle| Listening {
                snapshot: bundle.snapshot(),
                bundle,
            })
            .collect();
        let mut by_source = self
            .by_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        by_source.insert(
            provider_id,
            Entry {
                stamps,
                bundles: bundles.clone(),
            },
        );
        Ok(bundles)
    }

    fn kept(&self, provider_id: i64, stamps: &Stamps) -> Option<Arc<[Listening]>> {
        let by_source = self
            .by_source
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        by_source
            .get(&provider_id)
            .filter(|e| e.stamps == *stamps)
            .map(|e| e.bundles.clone())
    }
}

pub(super) fn running(provider_id: i64) -> bundles::BoxedQuery<'static, crate::db::Backend> {
    bundles::table
        .filter(bundles::source_provider_id.eq(provider_id))
        .filter(bundles::state.eq(BundleState::Running))
        .order(bundles::id)
        .into_boxed()
}
