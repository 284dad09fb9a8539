//! Coverage gaps: questions the guides did not answer (refused, or marked 👎) grouped by the terms
//! they share after the English analyzer, so maintainers see which section to write next. Plain
//! word overlap, no model and no external service.

use serde::Serialize;
use std::collections::BTreeSet;

/// Questions that ask about the same thing, with how often they were asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionCluster {
    /// The analyzed terms most of its questions share, most shared first.
    pub terms: Vec<String>,
    /// Times its questions were asked (or voted down), together.
    pub count: u64,
    /// Distinct questions in it.
    pub questions: usize,
    /// A few of them, most asked first.
    pub examples: Vec<String>,
}

/// A question joins a cluster when it shares at least this share of the smaller term set with
/// the cluster's first question (and at least one term).
const MIN_OVERLAP: f32 = 0.5;

struct Building {
    seed: BTreeSet<String>,
    members: Vec<(String, u64, BTreeSet<String>)>,
}

/// The question's words as the index reads them (lowercased, English stop words removed,
/// stemmed), without the words every question has ("how", "can", "I", ...).
fn analyzed_terms(question: &str) -> BTreeSet<String> {
    let lowered = question.to_lowercase();
    let kept: Vec<&str> = lowered
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|word| !word.is_empty() && !super::follow_up::is_filler(word))
        .collect();
    let text = kept.join(" ");
    let mut analyzer = super::english_analyzer();
    let mut stream = analyzer.token_stream(&text);
    let mut terms = BTreeSet::new();
    while stream.advance() {
        terms.insert(stream.token().text.clone());
    }
    terms
}

/// Groups `(question, count)` pairs: most asked first, each question joins the first cluster
/// whose first question shares enough of its analyzed terms, or starts its own. Clusters come
/// most asked first, each with at most `examples` examples.
pub fn cluster_questions(items: &[(String, u64)], examples: usize) -> Vec<QuestionCluster> {
    let mut sorted: Vec<&(String, u64)> = items.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut building: Vec<Building> = Vec::new();
    for (question, count) in sorted {
        let terms = analyzed_terms(question);
        let joined = building.iter_mut().find(|cluster| {
            let shared = cluster.seed.intersection(&terms).count();
            let smaller = cluster.seed.len().min(terms.len());
            shared > 0 && shared as f32 >= MIN_OVERLAP * smaller as f32
        });
        match joined {
            Some(cluster) => cluster.members.push((question.clone(), *count, terms)),
            None => building.push(Building {
                seed: terms.clone(),
                members: vec![(question.clone(), *count, terms)],
            }),
        }
    }
    let mut clusters: Vec<QuestionCluster> = building
        .into_iter()
        .map(|cluster| {
            let mut shared: Vec<(String, usize)> = Vec::new();
            for (_, _, terms) in &cluster.members {
                for term in terms {
                    match shared.iter_mut().find(|(seen, _)| seen == term) {
                        Some((_, times)) => *times += 1,
                        None => shared.push((term.clone(), 1)),
                    }
                }
            }
            let half = cluster.members.len().div_ceil(2);
            shared.retain(|(_, times)| *times >= half);
            shared.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            QuestionCluster {
                terms: shared.into_iter().map(|(term, _)| term).collect(),
                count: cluster.members.iter().map(|(_, count, _)| count).sum(),
                questions: cluster.members.len(),
                examples: cluster
                    .members
                    .iter()
                    .take(examples)
                    .map(|(question, _, _)| question.clone())
                    .collect(),
            }
        })
        .collect();
    clusters.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.terms.cmp(&b.terms)));
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_questions_group_under_their_shared_terms() {
        let items = vec![
            ("does google sponsor H1B visas?".to_string(), 3),
            ("H1B visa sponsorship at meta?".to_string(), 1),
            ("can I get an H1B visa as an ML engineer".to_string(), 2),
            ("how do I negotiate a relocation package".to_string(), 1),
            ("relocation package at meta?".to_string(), 1),
            ("what is the weather".to_string(), 1),
        ];
        let clusters = cluster_questions(&items, 2);
        let visa = &clusters[0];
        assert!(visa.terms.contains(&"visa".to_string()), "{clusters:#?}");
        assert_eq!(visa.count, 6, "{clusters:#?}");
        assert_eq!(visa.questions, 3);
        assert_eq!(visa.examples.len(), 2);
        assert_eq!(visa.examples[0], "does google sponsor H1B visas?");
        let relocation = clusters
            .iter()
            .find(|cluster| cluster.terms.contains(&"reloc".to_string()))
            .expect("a relocation cluster");
        assert_eq!(relocation.questions, 2);
        assert_eq!(clusters.iter().map(|c| c.count).sum::<u64>(), 9);
        assert!(cluster_questions(&[], 3).is_empty());
    }
}
