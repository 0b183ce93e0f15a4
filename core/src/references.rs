//! RetailCRM reference data (order statuses and their groups) per provider, cached for a short
//! time: the editor's status selector and the "no open deal" check both read it, and neither
//! should spend the account's 10 requests/second on data that changes a few times a year.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::Core;
use crate::engine::{StepError, clients};
use crate::providers::Provider;

const TTL: Duration = Duration::from_secs(300);

/// Group codes whose statuses close a deal (RetailCRM's built-in "complete" and "cancel").
pub const FINAL_GROUPS: [&str; 2] = ["complete", "cancel"];

#[derive(Debug, Clone, Default)]
pub struct StatusGroupView {
    pub code: String,
    pub name: String,
    pub statuses: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct References {
    /// Groups in RetailCRM's order, each with its active statuses (code, name) in order.
    pub groups: Vec<StatusGroupView>,
    /// Status code → group code.
    pub group_of: BTreeMap<String, String>,
}

impl References {
    pub fn is_final(&self, status: &str) -> bool {
        self.group_of
            .get(status)
            .is_some_and(|g| FINAL_GROUPS.contains(&g.as_str()))
    }

    pub fn status_name(&self, code: &str) -> Option<&str> {
        self.groups
            .iter()
            .flat_map(|g| g.statuses.iter())
            .find(|(c, _)| c == code)
            .map(|(_, n)| n.as_str())
    }
}

type Cache = Mutex<HashMap<i64, (Instant, Arc<References>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub fn invalidate(provider_id: i64) {
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&provider_id);
}

pub async fn statuses(core: &Core, provider: &Provider) -> Result<Arc<References>, StepError> {
    if let Some((at, refs)) = cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&provider.id)
        && at.elapsed() < TTL
    {
        return Ok(refs.clone());
    }
    let crm = clients::retailcrm(core, provider)?;
    let statuses = crm
        .api
        .statuses()
        .await
        .map_err(|e| StepError::upstream(&e))?;
    let groups = crm
        .api
        .status_groups()
        .await
        .map_err(|e| StepError::upstream(&e))?;
    let mut group_list: Vec<_> = groups.into_values().filter(|g| g.active).collect();
    group_list.sort_by_key(|g| g.ordering.unwrap_or(i64::MAX));
    let mut refs = References::default();
    for g in &group_list {
        let mut members: Vec<_> = statuses
            .values()
            .filter(|s| s.group == g.code && s.active)
            .collect();
        members.sort_by_key(|s| s.ordering.unwrap_or(i64::MAX));
        refs.groups.push(StatusGroupView {
            code: g.code.clone(),
            name: g.name.clone(),
            statuses: members
                .iter()
                .map(|s| (s.code.clone(), s.name.clone()))
                .collect(),
        });
    }
    for s in statuses.values() {
        refs.group_of.insert(s.code.clone(), s.group.clone());
    }
    let refs = Arc::new(refs);
    cache()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(provider.id, (Instant::now(), refs.clone()));
    Ok(refs)
}
