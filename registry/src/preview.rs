//! What-if (`PreviewClassification`): a city's cohort classified with changed indicators or another policy,
//! compared with the classes computed now. Nothing is stored.

use std::time::Duration;

use township_policy::{Policy, TownshipClass};
use township_proto::classifier::v1 as cpb;
use township_runtime::now_ms;

use crate::classification::{Classifier, ClassifyError, classify_request};
use crate::domain::model::{CohortKey, IndicatorObservation, NewObservation};
use crate::domain::names::TownshipCode;
use crate::store::{Store, StoreError};

/// The classifier's answer for the changed cohort, and every township whose class would differ from its
/// current computed class.
#[derive(Debug, Clone)]
pub struct Preview {
    pub answer: cpb::ClassifyResponse,
    pub changes: Vec<PreviewChange>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreviewChange {
    pub township: TownshipCode,
    pub display_name: String,
    /// None: the township has no computed class now.
    pub previous_class: Option<TownshipClass>,
    pub new_class: u32,
    pub score: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the classifier could not classify the cohort: {0}")]
    Classifier(#[from] ClassifyError),
}

/// Classifies `cohort` with `changed` in place of the stored latest observations (a township not in the cohort
/// joins it) under `policy`, within `deadline`.
pub async fn what_if(
    store: &dyn Store,
    classifier: &Classifier,
    deadline: Duration,
    cohort: &CohortKey,
    changed: Vec<NewObservation>,
    policy: &Policy,
) -> Result<Preview, PreviewError> {
    let mut inputs = store.cohort_inputs(cohort).await?;
    for change in changed {
        let observation = IndicatorObservation {
            id: 0,
            township: change.township.clone(),
            data_year: cohort.data_year,
            values: change.values,
            source: change.source,
            recorded_at: now_ms(),
            recorded_by: String::new(),
        };
        match inputs.iter_mut().find(|(township, _)| township.code == change.township) {
            Some(entry) => entry.1 = observation,
            None => {
                let township = store.get_township(&change.township).await?;
                inputs.push((township, observation));
            }
        }
    }
    let answer = classifier.classify(classify_request(policy, &inputs), deadline).await?;
    let mut changes = Vec::new();
    for result in &answer.results {
        let Ok(code) = TownshipCode::parse(&result.id) else { continue };
        let current = store.get_class(&code, cohort.data_year).await?.and_then(|r| r.computed_class);
        if current.map(u32::from) != Some(result.township_class) {
            changes.push(PreviewChange {
                township: code,
                display_name: result.name.clone(),
                previous_class: current,
                new_class: result.township_class,
                score: result.score,
            });
        }
    }
    Ok(Preview { answer, changes })
}
