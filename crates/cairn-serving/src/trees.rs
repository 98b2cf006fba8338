//! Cairn's own evaluator for `ai.onnx.ml` tree ensembles (`TreeEnsembleClassifier`,
//! `TreeEnsembleRegressor`), used when a graph is one tree ensemble on the model input (followed
//! by `Identity` nodes at most), which is what skl2onnx writes for forests and gradient boosting.
//!
//! Semantics follow the ONNX operator specification as onnxruntime implements it: each row walks
//! every tree from its root (`BRANCH_LEQ`, `BRANCH_LT`, `BRANCH_GTE`, `BRANCH_GT`, `BRANCH_EQ`,
//! `BRANCH_NEQ`; a missing value takes the true branch when `nodes_missing_value_tracks_true`
//! says so); the reached leaves' weights are summed per class/target (averaged, or the min/max,
//! for regressors' `aggregate_function`), `base_values` are added, then `post_transform`
//! (`NONE`, `LOGISTIC`, `SOFTMAX`, `SOFTMAX_ZERO`). A binary classifier whose leaves score one
//! class only reports `[-s, s]` (or `[1 - s, s]` when every weight is positive) before the
//! transform. Labels are the class of the highest score, the first on ties.

use std::collections::HashMap;

use tract_onnx::pb;

use crate::ServingError;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Debug, Clone)]
struct Node {
    mode: Mode,
    feature: usize,
    threshold: f32,
    yes: usize,
    no: usize,
    missing_yes: bool,
    leaf: (usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
}

/// A compiled tree ensemble.
#[derive(Debug, Clone)]
pub(crate) struct TreeModel {
    roots: Vec<usize>,
    nodes: Vec<Node>,
    leaf_weights: Vec<(usize, f32)>,
    width: usize,
    base: Vec<f32>,
    aggregate: Aggregate,
    post: Post,
    /// Classifiers: labels by score column, and whether the binary one-score layout applies.
    labels: Option<Vec<i64>>,
    binary: bool,
    all_positive: bool,
    pub(crate) features: usize,
}

fn attribute<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn ints(node: &pb::NodeProto, name: &str) -> Vec<i64> {
    attribute(node, name).map(|a| a.ints.clone()).unwrap_or_default()
}

fn floats(node: &pb::NodeProto, name: &str) -> Vec<f32> {
    attribute(node, name).map(|a| a.floats.clone()).unwrap_or_default()
}

fn text(node: &pb::NodeProto, name: &str) -> Option<String> {
    attribute(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

fn unsupported(message: impl Into<String>) -> ServingError {
    ServingError::Unsupported(message.into())
}

impl TreeModel {
    /// Builds the evaluator from a tree-ensemble node; `features` is the input width.
    pub(crate) fn from_node(node: &pb::NodeProto, features: usize) -> Result<Self, ServingError> {
        let classifier = node.op_type == "TreeEnsembleClassifier";
        for tensor_attribute in [
            "nodes_values_as_tensor",
            "class_weights_as_tensor",
            "target_weights_as_tensor",
            "base_values_as_tensor",
        ] {
            if attribute(node, tensor_attribute).is_some() {
                return Err(unsupported(format!(
                    "tree ensembles with '{tensor_attribute}' are not served"
                )));
            }
        }
        let tree_ids = ints(node, "nodes_treeids");
        let node_ids = ints(node, "nodes_nodeids");
        let feature_ids = ints(node, "nodes_featureids");
        let values = floats(node, "nodes_values");
        let yes_ids = ints(node, "nodes_truenodeids");
        let no_ids = ints(node, "nodes_falsenodeids");
        let missing = ints(node, "nodes_missing_value_tracks_true");
        let modes: Vec<Mode> = attribute(node, "nodes_modes")
            .map(|a| a.strings.iter().map(|s| s.as_slice()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|mode| match mode {
                b"BRANCH_LEQ" => Ok(Mode::Leq),
                b"BRANCH_LT" => Ok(Mode::Lt),
                b"BRANCH_GTE" => Ok(Mode::Gte),
                b"BRANCH_GT" => Ok(Mode::Gt),
                b"BRANCH_EQ" => Ok(Mode::Eq),
                b"BRANCH_NEQ" => Ok(Mode::Neq),
                b"LEAF" => Ok(Mode::Leaf),
                other => Err(unsupported(format!(
                    "unknown tree node mode {}",
                    String::from_utf8_lossy(other)
                ))),
            })
            .collect::<Result<_, _>>()?;
        let count = tree_ids.len();
        if [
            node_ids.len(),
            feature_ids.len(),
            values.len(),
            yes_ids.len(),
            no_ids.len(),
            modes.len(),
        ]
        .iter()
        .any(|len| *len != count)
        {
            return Err(ServingError::Invalid(
                "the tree ensemble's node attributes disagree in length".into(),
            ));
        }
        let index: HashMap<(i64, i64), usize> =
            tree_ids.iter().zip(&node_ids).enumerate().map(|(i, (t, n))| ((*t, *n), i)).collect();
        let prefix = if classifier { "class" } else { "target" };
        let leaf_trees = ints(node, &format!("{prefix}_treeids"));
        let leaf_nodes = ints(node, &format!("{prefix}_nodeids"));
        let leaf_targets = ints(node, &format!("{prefix}_ids"));
        let leaf_values = floats(node, &format!("{prefix}_weights"));
        if [leaf_nodes.len(), leaf_targets.len(), leaf_values.len()]
            .iter()
            .any(|len| *len != leaf_trees.len())
        {
            return Err(ServingError::Invalid(
                "the tree ensemble's leaf attributes disagree in length".into(),
            ));
        }
        let mut per_node: Vec<Vec<(usize, f32)>> = vec![Vec::new(); count];
        for i in 0..leaf_trees.len() {
            let node_index = *index.get(&(leaf_trees[i], leaf_nodes[i])).ok_or_else(|| {
                ServingError::Invalid("a leaf weight names a missing node".into())
            })?;
            let target = usize::try_from(leaf_targets[i])
                .map_err(|_| ServingError::Invalid("negative class id".into()))?;
            per_node[node_index].push((target, leaf_values[i]));
        }
        let labels = classifier.then(|| ints(node, "classlabels_int64s"));
        if classifier && labels.as_ref().is_none_or(Vec::is_empty) {
            return Err(unsupported("tree classifiers with string class labels are not served"));
        }
        let max_target = leaf_targets.iter().copied().max().unwrap_or(0).max(0) as usize + 1;
        let width = match &labels {
            Some(labels) => labels.len().max(max_target),
            None => usize::try_from(attribute(node, "n_targets").map_or(1, |a| a.i))
                .unwrap_or(1)
                .max(max_target),
        };
        let binary =
            labels.as_ref().is_some_and(|l| l.len() == 2) && leaf_targets.iter().all(|t| *t == 0);
        let all_positive = leaf_values.iter().all(|w| *w >= 0.0);
        let mut nodes = Vec::with_capacity(count);
        let mut leaf_weights = Vec::new();
        for i in 0..count {
            let child = |id: i64| -> Result<usize, ServingError> {
                index.get(&(tree_ids[i], id)).copied().ok_or_else(|| {
                    ServingError::Invalid("a tree node points at a missing child".into())
                })
            };
            let leaf_start = leaf_weights.len();
            leaf_weights.extend(per_node[i].iter().copied());
            let (yes, no) = if modes[i] == Mode::Leaf {
                (0, 0)
            } else {
                (child(yes_ids[i])?, child(no_ids[i])?)
            };
            let feature = usize::try_from(feature_ids[i]).unwrap_or(usize::MAX);
            if modes[i] != Mode::Leaf && feature >= features {
                return Err(ServingError::Invalid(format!(
                    "a tree splits on feature {feature}; the input has {features}"
                )));
            }
            nodes.push(Node {
                mode: modes[i],
                feature,
                threshold: values[i],
                yes,
                no,
                missing_yes: missing.get(i).copied().unwrap_or(0) != 0,
                leaf: (leaf_start, leaf_weights.len()),
            });
        }
        // Each tree's root is its node with id 0 (skl2onnx and the ONNX examples number so).
        let mut trees: Vec<i64> = tree_ids.clone();
        trees.sort_unstable();
        trees.dedup();
        let roots = trees
            .iter()
            .map(|tree| {
                index
                    .get(&(*tree, 0))
                    .copied()
                    .ok_or_else(|| ServingError::Invalid(format!("tree {tree} has no node 0")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let aggregate = match text(node, "aggregate_function").as_deref().unwrap_or("SUM") {
            "SUM" => Aggregate::Sum,
            "AVERAGE" => Aggregate::Average,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => return Err(unsupported(format!("aggregate_function {other} is not served"))),
        };
        let post = match text(node, "post_transform").as_deref().unwrap_or("NONE") {
            "NONE" => Post::None,
            "LOGISTIC" => Post::Logistic,
            "SOFTMAX" => Post::Softmax,
            "SOFTMAX_ZERO" => Post::SoftmaxZero,
            other => return Err(unsupported(format!("post_transform {other} is not served"))),
        };
        let base = floats(node, "base_values");
        Ok(Self {
            roots,
            nodes,
            leaf_weights,
            width,
            base,
            aggregate,
            post,
            labels,
            binary,
            all_positive,
            features,
        })
    }

    fn leaf(&self, root: usize, row: &[f32]) -> &Node {
        let mut node = &self.nodes[root];
        loop {
            let x = row[node.feature.min(row.len().saturating_sub(1))];
            let yes = match node.mode {
                Mode::Leaf => return node,
                _ if x.is_nan() => node.missing_yes,
                Mode::Leq => x <= node.threshold,
                Mode::Lt => x < node.threshold,
                Mode::Gte => x >= node.threshold,
                Mode::Gt => x > node.threshold,
                Mode::Eq => x == node.threshold,
                Mode::Neq => x != node.threshold,
            };
            node = &self.nodes[if yes { node.yes } else { node.no }];
        }
    }

    /// Scores one row: per class (classifiers, after the transform) or per target.
    fn score(&self, row: &[f32]) -> Vec<f32> {
        let initial = match self.aggregate {
            Aggregate::Min => f32::INFINITY,
            Aggregate::Max => f32::NEG_INFINITY,
            _ => 0.0,
        };
        let mut totals = vec![initial; self.width];
        let mut touched = vec![false; self.width];
        for &root in &self.roots {
            let leaf = self.leaf(root, row);
            for &(target, weight) in &self.leaf_weights[leaf.leaf.0..leaf.leaf.1] {
                let total = &mut totals[target];
                touched[target] = true;
                match self.aggregate {
                    Aggregate::Sum | Aggregate::Average => *total += weight,
                    Aggregate::Min => *total = total.min(weight),
                    Aggregate::Max => *total = total.max(weight),
                }
            }
        }
        for (total, touched) in totals.iter_mut().zip(&touched) {
            if !touched {
                *total = 0.0;
            } else if self.aggregate == Aggregate::Average {
                *total /= self.roots.len() as f32;
            }
        }
        for (total, base) in totals.iter_mut().zip(&self.base) {
            *total += base;
        }
        if self.binary {
            let s = totals[0];
            let mut pair =
                if self.all_positive && self.post == Post::None { [1.0 - s, s] } else { [-s, s] };
            transform(self.post, &mut pair);
            return pair.to_vec();
        }
        transform(self.post, &mut totals);
        totals
    }

    /// Evaluates rows: `(labels, scores)` for classifiers, `(None, values)` for regressors.
    pub(crate) fn predict(&self, rows: usize, data: &[f32]) -> (Option<Vec<i64>>, Vec<f32>, usize) {
        let width = self.output_width();
        let mut scores = Vec::with_capacity(rows * width);
        let mut labels = Vec::with_capacity(rows);
        for row in data.chunks(self.features).take(rows) {
            let scored = self.score(row);
            if let Some(classes) = &self.labels {
                let best = scored
                    .iter()
                    .enumerate()
                    .fold(0, |best, (i, v)| if *v > scored[best] { i } else { best });
                labels.push(classes[best.min(classes.len() - 1)]);
            }
            scores.extend(scored);
        }
        (self.labels.is_some().then_some(labels), scores, width)
    }

    /// Scores per row in the output.
    pub(crate) fn output_width(&self) -> usize {
        if self.binary { 2 } else { self.width }
    }

    /// Whether this is a classifier.
    pub(crate) fn is_classifier(&self) -> bool {
        self.labels.is_some()
    }
}

fn transform(post: Post, scores: &mut [f32]) {
    match post {
        Post::None => {}
        Post::Logistic => scores.iter_mut().for_each(|s| *s = 1.0 / (1.0 + (-*s).exp())),
        Post::Softmax | Post::SoftmaxZero => {
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                if post == Post::SoftmaxZero && *s == 0.0 {
                    continue;
                }
                *s = (*s - max).exp();
                sum += *s;
            }
            if sum > 0.0 {
                scores.iter_mut().for_each(|s| *s /= sum);
            }
        }
    }
}
