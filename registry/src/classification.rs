//! Talking to the classifier: the client with its deadline, building a cohort's request, and checking the answer
//! before anything is stored.

use std::collections::HashMap;
use std::time::Duration;

use tonic::transport::Channel;
use township_proto::classifier::v1::classifier_service_client::ClassifierServiceClient;

use township_policy::{PerIndicator, Policy};
use township_proto::classifier::v1 as cpb;
use township_runtime::metrics::ClientCall;

use crate::domain::model::{CohortKey, IndicatorObservation, RunLine, Township};
use crate::domain::names::TownshipCode;
use crate::service::convert::{kind_to_proto, values_from_proto, values_to_proto};

/// The method the `grpc_client_*` metrics count the calls of.
const CLASSIFY_PATH: &str = "/township.classifier.v1.ClassifierService/Classify";

/// The classifier service over one HTTP/2 connection (cheap to clone).
#[derive(Debug, Clone)]
pub struct Classifier {
    client: ClassifierServiceClient<Channel>,
}

/// Why a Classify call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The classifier refused the request itself (INVALID_ARGUMENT): sending it again cannot help.
    #[error("the classifier refused the cohort: {0}")]
    Refused(String),
    /// Unreachable, overloaded, failing or slow: a later attempt may succeed.
    #[error("the classifier answered {code:?}: {message}")]
    Failed { code: tonic::Code, message: String },
    #[error("the classifier did not answer within {0:?}")]
    TimedOut(Duration),
}

impl ClassifyError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, ClassifyError::Refused(_))
    }
}

impl Classifier {
    /// A client of the classifier at `channel`, sending and accepting messages up to `max_message_bytes`.
    pub fn new(channel: Channel, max_message_bytes: usize) -> Self {
        let client = ClassifierServiceClient::new(channel)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes);
        Self { client }
    }

    /// Classifies with a deadline, sent to the classifier (`grpc-timeout`) and enforced here as well, so that a
    /// hung classifier never holds a caller longer than `deadline`.
    pub async fn classify(
        &self,
        request: cpb::ClassifyRequest,
        deadline: Duration,
    ) -> Result<cpb::ClassifyResponse, ClassifyError> {
        let mut request = tonic::Request::new(request);
        request.set_timeout(deadline);
        let call = ClientCall::start(CLASSIFY_PATH);
        let answer = tokio::time::timeout(deadline, self.client.clone().classify(request)).await;
        call.finish(match &answer {
            Err(_) => tonic::Code::DeadlineExceeded,
            Ok(Ok(_)) => tonic::Code::Ok,
            Ok(Err(status)) => status.code(),
        });
        match answer {
            Err(_) => Err(ClassifyError::TimedOut(deadline)),
            Ok(Ok(answer)) => Ok(answer.into_inner()),
            Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => {
                Err(ClassifyError::Refused(status.message().to_owned()))
            }
            Ok(Err(status)) => Err(ClassifyError::Failed { code: status.code(), message: status.message().to_owned() }),
        }
    }
}

/// The classifier request for a cohort: every township with its latest indicators, and the policy in full
/// (so that the classifier's default never silently applies).
pub fn classify_request(policy: &Policy, inputs: &[(Township, IndicatorObservation)]) -> cpb::ClassifyRequest {
    cpb::ClassifyRequest {
        policy: Some(township_policy::proto::policy_to_proto(policy)),
        townships: inputs
            .iter()
            .map(|(township, observation)| cpb::TownshipInput {
                id: township.code.to_string(),
                name: township.name.clone(),
                kind: kind_to_proto(township.kind).into(),
                indicators: Some(values_to_proto(observation.values)),
            })
            .collect(),
        // The registry stores each township's explanation for `townctl explain`, so it asks for them.
        view: cpb::ClassificationView::Full.into(),
    }
}

/// Why an answer of the classifier was not applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnswerError {
    #[error("the classifier answered for {answered} townships, the cohort has {expected}")]
    WrongCount { expected: usize, answered: usize },
    #[error("the classifier's answer is missing township {0}")]
    Missing(String),
    #[error("the classifier's answer has township {0} twice or one not in the cohort")]
    Unexpected(String),
    #[error("the classifier gave township {township} class {class}; classes are 1–3")]
    ClassOutOfRange { township: String, class: u32 },
    #[error("the classifier applied policy {answered}, not the requested {expected}")]
    FingerprintMismatch { expected: String, answered: String },
    #[error("the classifier gave township {0} a score that is not a finite number")]
    BadScore(String),
}

/// Checks that the answer covers exactly the cohort, with classes 1–3, finite scores, and the fingerprint of
/// the policy sent; returns the run's lines in the answer's rank order.
pub fn check_answer(
    cohort: &CohortKey,
    policy: &Policy,
    inputs: &[(Township, IndicatorObservation)],
    answer: &cpb::ClassifyResponse,
) -> Result<Vec<RunLine>, AnswerError> {
    let expected = policy.fingerprint();
    if answer.policy_fingerprint != expected {
        return Err(AnswerError::FingerprintMismatch { expected, answered: answer.policy_fingerprint.clone() });
    }
    if answer.results.len() != inputs.len() {
        return Err(AnswerError::WrongCount { expected: inputs.len(), answered: answer.results.len() });
    }
    let mut sent: HashMap<&str, PerIndicator<f64>> =
        inputs.iter().map(|(township, observation)| (township.code.as_str(), observation.values)).collect();
    let mut lines = Vec::with_capacity(answer.results.len());
    for result in &answer.results {
        let inputs = sent.remove(result.id.as_str()).ok_or_else(|| AnswerError::Unexpected(result.id.clone()))?;
        let Some(class) = u8::try_from(result.township_class).ok().filter(|class| (1..=3).contains(class)) else {
            return Err(AnswerError::ClassOutOfRange { township: result.id.clone(), class: result.township_class });
        };
        if !result.score.is_finite() {
            return Err(AnswerError::BadScore(result.id.clone()));
        }
        let township = TownshipCode::parse(&result.id).map_err(|_| AnswerError::Unexpected(result.id.clone()))?;
        lines.push(RunLine {
            township,
            inputs,
            indices: result.indices.as_ref().map(values_from_proto).unwrap_or_default(),
            score: result.score,
            rank: result.rank,
            class,
            explanation: result.explanation.clone(),
        });
    }
    if let Some(missing) = sent.keys().next() {
        return Err(AnswerError::Missing((*missing).to_owned()));
    }
    tracing::debug!(city = %cohort.city, year = cohort.data_year, townships = lines.len(), "answer checked");
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::TownshipKind;
    use crate::domain::names::CityCode;

    fn inputs() -> Vec<(Township, IndicatorObservation)> {
        ["430102001", "430102002"]
            .iter()
            .map(|code| {
                let code = TownshipCode::parse(code).unwrap();
                (
                    Township {
                        code: code.clone(),
                        name: "某镇".to_owned(),
                        kind: TownshipKind::Town,
                        flags: vec![],
                        valid_from: None,
                        valid_to: None,
                        revision: 1,
                        updated_at: 0,
                    },
                    IndicatorObservation {
                        id: 1,
                        township: code,
                        data_year: 2023,
                        values: PerIndicator { population: 1.0, fiscal_revenue: 2.0, land_area: 3.0 },
                        source: String::new(),
                        recorded_at: 0,
                        recorded_by: String::new(),
                    },
                )
            })
            .collect()
    }

    fn answer(policy: &Policy) -> cpb::ClassifyResponse {
        let result = |id: &str, rank, class| cpb::TownshipResult {
            id: id.to_owned(),
            rank,
            township_class: class,
            score: 100.0,
            ..Default::default()
        };
        cpb::ClassifyResponse {
            results: vec![result("430102002", 1, 2), result("430102001", 2, 3)],
            policy_fingerprint: policy.fingerprint(),
            ..Default::default()
        }
    }

    fn cohort() -> CohortKey {
        CohortKey { city: CityCode::parse("4301").unwrap(), data_year: 2023 }
    }

    #[test]
    fn a_complete_answer_becomes_the_run_lines_in_rank_order() {
        let policy = Policy::builtin_default();
        let lines = check_answer(&cohort(), &policy, &inputs(), &answer(&policy)).unwrap();
        let summary: Vec<_> = lines.iter().map(|l| (l.township.as_str(), l.class)).collect();
        assert_eq!(summary, [("430102002", 2), ("430102001", 3)]);
        assert_eq!(lines[0].inputs.land_area, 3.0);
    }

    #[test]
    fn an_answer_missing_a_township_or_with_a_bad_class_or_policy_is_refused() {
        let policy = Policy::builtin_default();
        let mut short = answer(&policy);
        short.results.pop();
        assert!(matches!(check_answer(&cohort(), &policy, &inputs(), &short), Err(AnswerError::WrongCount { .. })));

        let mut twice = answer(&policy);
        twice.results[1].id = "430102002".to_owned();
        assert_eq!(
            check_answer(&cohort(), &policy, &inputs(), &twice),
            Err(AnswerError::Unexpected("430102002".to_owned()))
        );

        let mut bad_class = answer(&policy);
        bad_class.results[0].township_class = 4;
        assert!(matches!(
            check_answer(&cohort(), &policy, &inputs(), &bad_class),
            Err(AnswerError::ClassOutOfRange { class: 4, .. })
        ));

        let mut other_policy = answer(&policy);
        other_policy.policy_fingerprint = "sha256:00".to_owned();
        assert!(matches!(
            check_answer(&cohort(), &policy, &inputs(), &other_policy),
            Err(AnswerError::FingerprintMismatch { .. })
        ));
    }
}
