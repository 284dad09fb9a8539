//! "Does anything in the guides answer this?": a small logistic model over features of a search
//! that do not depend on the corpus's size (shares of the question's own weight, and matched
//! rarity relative to the rarest possible word), so adding guides does not loosen the gate.
//!
//! The coefficients are data, fitted on the dev sets only (`tests/eval/fit_relevance.py`, whose
//! feature list must match [`RelevanceModel::probability`]); the held-out sets judge them.

use super::RelevanceFeatures;

/// Coefficients of the relevance gate and the probability it needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelevanceModel {
    pub coverage: f32,
    pub unknown_share: f32,
    /// Per unit of matched rarity / 4, capped at 1 (four words found in one passage only).
    pub matched_rarity: f32,
    pub intercept: f32,
    /// A search is relevant at or above this probability.
    pub threshold: f32,
}

/// Matched rarity counted up to this many "found in one passage only" words.
const MATCHED_RARITY_CAP: f32 = 4.0;

impl Default for RelevanceModel {
    /// Fitted on every dev set (tests/eval/dev*.toml: 996 questions, with the bundled guide alone
    /// and with the test corpora). At 0.40 dev rejects 71% of off-topic questions and refuses 8%
    /// of answerable ones; 0.30 gives 58% / 4%, 0.50 84% / 16% (BENCHMARKS.md).
    fn default() -> Self {
        RelevanceModel {
            coverage: 2.679,
            unknown_share: -1.366,
            matched_rarity: 1.619,
            intercept: -1.922,
            threshold: 0.40,
        }
    }
}

impl RelevanceModel {
    /// The model's probability that the search found something that answers the question.
    pub fn probability(&self, features: &RelevanceFeatures) -> f32 {
        let z = self.intercept
            + self.coverage * features.coverage
            + self.unknown_share * features.unknown_share
            + self.matched_rarity
                * (features.matched_rarity.min(MATCHED_RARITY_CAP) / MATCHED_RARITY_CAP);
        1.0 / (1.0 + (-z).exp())
    }

    pub fn is_relevant(&self, features: &RelevanceFeatures) -> bool {
        features.concepts > 0 && self.probability(features) >= self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_coverage_of_rare_words_is_relevant_and_nothing_matched_is_not() {
        let model = RelevanceModel::default();
        let covered = RelevanceFeatures {
            coverage: 1.0,
            matched_rarity: 2.0,
            concepts: 2,
            ..RelevanceFeatures::default()
        };
        assert!(model.is_relevant(&covered));
        let unknown = RelevanceFeatures {
            coverage: 0.0,
            unknown_share: 1.0,
            concepts: 2,
            ..RelevanceFeatures::default()
        };
        assert!(!model.is_relevant(&unknown));
    }

    #[test]
    fn the_gate_reads_only_shares_so_corpus_size_cannot_move_it() {
        // The same question shape over a small and a large corpus gives the same features,
        // hence the same judgement: the model has no absolute score in it.
        let model = RelevanceModel::default();
        let half = RelevanceFeatures {
            coverage: 0.5,
            unknown_share: 0.5,
            matched_rarity: 0.9,
            concepts: 2,
            ..RelevanceFeatures::default()
        };
        assert!(!model.is_relevant(&half));
    }
}
