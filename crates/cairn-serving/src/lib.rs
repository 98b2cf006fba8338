//! Model runtimes for serving. ONNX models run in-process with `tract` (pure Rust): a model is
//! checked and compiled when it is loaded (deploy time), so an unsupported operator is a clear
//! error then, never at request time.
//!
//! Scope of the in-process runtime: one 2-D input of numbers (`[rows, features]`, float32, as
//! skl2onnx exports scikit-learn estimators), any number of 1-D or 2-D outputs. tract implements
//! the `ai.onnx.ml` operators `LinearClassifier`, `LinearRegressor`, `TreeEnsembleClassifier`,
//! `Normalizer` and `CategoryMapper`; Cairn adds `Scaler` by rewriting it into `Sub` and `Mul`
//! before tract reads the graph. `ZipMap` (export with `options={"zipmap": False}`),
//! `TreeEnsembleRegressor` and the other `ai.onnx.ml` operators are refused by name.

use std::collections::HashMap;
use std::sync::Arc;

mod trees;
mod worker;

pub use worker::{PythonWorker, check_python};

use sha2::{Digest, Sha256};
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;

/// A failure to load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// The model cannot be served by this runtime; the message says why and what to do.
    #[error("{0}")]
    Unsupported(String),
    /// The model file is not valid ONNX, or tract could not compile it.
    #[error("{0}")]
    Invalid(String),
    /// The request does not fit the model's input.
    #[error("{0}")]
    BadInput(String),
    /// Inference failed.
    #[error("inference failed: {0}")]
    Inference(String),
}

/// The element type of an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 64-bit integer.
    I64,
    /// 32-bit integer.
    I32,
    /// Boolean.
    Bool,
    /// Text.
    Str,
    /// JSON values (Python models).
    Json,
}

impl ElementType {
    /// The Open Inference Protocol's datatype name.
    pub fn oip_name(self) -> &'static str {
        match self {
            ElementType::F32 => "FP32",
            ElementType::F64 => "FP64",
            ElementType::I64 => "INT64",
            ElementType::I32 => "INT32",
            ElementType::Bool => "BOOL",
            ElementType::Str | ElementType::Json => "BYTES",
        }
    }
}

/// One input or output of a model as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// The graph's name for it.
    pub name: String,
    /// Element type.
    pub element: ElementType,
    /// Dimensions; `None` for a variable one (the rows).
    pub shape: Vec<Option<usize>>,
}

/// The values of one output for a batch, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Floats (float32 outputs are widened).
    F64(Vec<f64>),
    /// Integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Text.
    Str(Vec<String>),
    /// Whatever a Python model returned, one JSON value per row.
    Json(Vec<serde_json::Value>),
}

/// One output of a prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The output's name.
    pub name: String,
    /// Its shape for this batch (`[rows]` or `[rows, width]`).
    pub shape: Vec<usize>,
    /// Its element type.
    pub element: ElementType,
    /// The values, row-major.
    pub values: Values,
}

/// An ONNX model compiled for serving. Cheap to clone; safe to run from many threads.
#[derive(Clone)]
pub struct OnnxModel {
    backend: Backend,
    input: TensorSpec,
    outputs: Vec<TensorSpec>,
    sha256: String,
    /// For tree classifiers: the class labels by score column. tract's tree classifier
    /// labels do not always follow its own probabilities, so labels are taken as the class of
    /// the highest probability (the first on ties), as onnxruntime and scikit-learn do.
    tree_labels: Option<Vec<i64>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("input", &self.input)
            .field("outputs", &self.outputs)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// What runs a model.
#[derive(Clone)]
enum Backend {
    /// A tract plan.
    Tract(Arc<TypedRunnableModel>),
    /// Cairn's tree-ensemble evaluator, with the graph outputs' names and which tree output
    /// (0: labels or values, 1: scores) each one is.
    Trees(Arc<trees::TreeModel>, Vec<(String, usize)>),
}

/// The graph's tree ensemble, when the graph is one tree-ensemble node on its input followed by
/// `Identity` nodes at most: the node and, per graph output, which of its outputs it is.
fn tree_graph(graph: &pb::GraphProto) -> Option<(pb::NodeProto, Vec<(String, usize)>)> {
    let mut tree = None;
    let mut aliases: HashMap<String, String> = HashMap::new();
    for node in &graph.node {
        match (node.domain.as_str(), node.op_type.as_str()) {
            (ML_DOMAIN, "TreeEnsembleClassifier" | "TreeEnsembleRegressor") if tree.is_none() => {
                tree = Some(node.clone());
            }
            ("", "Identity") if node.input.len() == 1 && node.output.len() == 1 => {
                aliases.insert(node.output[0].clone(), node.input[0].clone());
            }
            _ => return None,
        }
    }
    let tree = tree?;
    let mut outputs = Vec::new();
    for output in &graph.output {
        let mut name = output.name.clone();
        for _ in 0..16 {
            match aliases.get(&name) {
                Some(source) => name = source.clone(),
                None => break,
            }
        }
        let index = tree.output.iter().position(|o| *o == name)?;
        outputs.push((output.name.clone(), index));
    }
    Some((tree, outputs))
}

/// `ai.onnx.ml` operators tract implements.
const TRACT_ML_OPS: [&str; 5] = [
    "LinearClassifier",
    "LinearRegressor",
    "TreeEnsembleClassifier",
    "Normalizer",
    "CategoryMapper",
];

const ML_DOMAIN: &str = "ai.onnx.ml";

fn float_tensor(name: String, values: &[f32]) -> pb::TensorProto {
    pb::TensorProto {
        name,
        dims: vec![values.len() as i64],
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: values.to_vec(),
        ..pb::TensorProto::default()
    }
}

fn float_list(node: &pb::NodeProto, name: &str) -> Vec<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.floats.clone()).unwrap_or_default()
}

/// Rewrites what Cairn implements itself (`Scaler` → `Sub`, `Mul`) and refuses, by name, the
/// `ai.onnx.ml` operators nobody implements.
fn rewrite(graph: &mut pb::GraphProto) -> Result<(), ServingError> {
    let mut nodes = Vec::with_capacity(graph.node.len());
    for (index, node) in std::mem::take(&mut graph.node).into_iter().enumerate() {
        if node.domain != ML_DOMAIN {
            nodes.push(node);
            continue;
        }
        match node.op_type.as_str() {
            "TreeEnsembleClassifier" => {
                let mut node = node;
                fold_base_values(&mut node)?;
                nodes.push(node);
            }
            op if TRACT_ML_OPS.contains(&op) => nodes.push(node),
            "Scaler" => {
                let (Some(input), Some(output)) = (node.input.first(), node.output.first()) else {
                    return Err(ServingError::Invalid(
                        "a Scaler node lacks its input or output".into(),
                    ));
                };
                let offset = float_list(&node, "offset");
                let scale = float_list(&node, "scale");
                let prefix = format!("cairn_scaler_{index}");
                graph.initializer.push(float_tensor(format!("{prefix}_offset"), &offset));
                graph.initializer.push(float_tensor(format!("{prefix}_scale"), &scale));
                nodes.push(pb::NodeProto {
                    name: format!("{prefix}_sub"),
                    op_type: "Sub".into(),
                    input: vec![input.clone(), format!("{prefix}_offset")],
                    output: vec![format!("{prefix}_centered")],
                    ..pb::NodeProto::default()
                });
                nodes.push(pb::NodeProto {
                    name: format!("{prefix}_mul"),
                    op_type: "Mul".into(),
                    input: vec![format!("{prefix}_centered"), format!("{prefix}_scale")],
                    output: vec![output.clone()],
                    ..pb::NodeProto::default()
                });
            }
            "ZipMap" => {
                return Err(ServingError::Unsupported(
                    "the model ends in a ZipMap (dictionaries of class probabilities), which Cairn's in-process ONNX runtime does not serve: export it with skl2onnx's options={\"zipmap\": False}".into(),
                ));
            }
            other => {
                return Err(ServingError::Unsupported(format!(
                    "the model uses the ai.onnx.ml operator '{other}', which Cairn's in-process ONNX runtime does not implement (it runs LinearClassifier, LinearRegressor, TreeEnsembleClassifier, Normalizer, CategoryMapper and Scaler); serve the model through its Python flavor instead"
                )));
            }
        }
    }
    graph.node = nodes;
    Ok(())
}

fn ints(node: &pb::NodeProto, name: &str) -> Vec<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.ints.clone()).unwrap_or_default()
}

/// Moves a tree classifier's `base_values` into its leaf weights: each class's base is added to
/// every leaf entry of that class in the first tree scoring the class (every row reaches exactly
/// one leaf of a tree, so each score gains its base once). tract rejects the one-value
/// `base_values` of binary gradient boosting, which ONNX allows.
fn fold_base_values(node: &mut pb::NodeProto) -> Result<(), ServingError> {
    let base = float_list(node, "base_values");
    if base.iter().all(|value| *value == 0.0) {
        node.attribute.retain(|a| a.name != "base_values");
        return Ok(());
    }
    let class_ids = ints(node, "class_ids");
    let class_trees = ints(node, "class_treeids");
    let node_trees = ints(node, "nodes_treeids");
    let modes: Vec<Vec<u8>> = node
        .attribute
        .iter()
        .find(|a| a.name == "nodes_modes")
        .map(|a| a.strings.clone())
        .unwrap_or_default();
    let refuse = || {
        ServingError::Unsupported(
            "the tree classifier's base_values cannot be folded into its leaves (a tree does not score its class on every leaf)".into(),
        )
    };
    let Some(weights) = node.attribute.iter_mut().find(|a| a.name == "class_weights") else {
        return Err(refuse());
    };
    for (class, value) in base.iter().enumerate() {
        if *value == 0.0 {
            continue;
        }
        let class = class as i64;
        let Some(first) = class_ids.iter().position(|id| *id == class) else {
            return Err(refuse());
        };
        let tree = class_trees[first];
        let leaves = node_trees
            .iter()
            .zip(&modes)
            .filter(|(t, mode)| **t == tree && mode.as_slice() == b"LEAF")
            .count();
        let entries: Vec<usize> = (0..class_ids.len())
            .filter(|i| class_ids[*i] == class && class_trees[*i] == tree)
            .collect();
        if entries.len() != leaves || weights.floats.len() != class_ids.len() {
            return Err(refuse());
        }
        for i in entries {
            weights.floats[i] += value;
        }
    }
    node.attribute.retain(|a| a.name != "base_values");
    Ok(())
}

fn element_of(datum: DatumType) -> Result<ElementType, ServingError> {
    Ok(match datum {
        DatumType::F32 => ElementType::F32,
        DatumType::F64 => ElementType::F64,
        DatumType::I64 => ElementType::I64,
        DatumType::I32 => ElementType::I32,
        DatumType::Bool => ElementType::Bool,
        DatumType::String => ElementType::Str,
        other => {
            return Err(ServingError::Unsupported(format!(
                "outputs of type {other:?} are not served"
            )));
        }
    })
}

fn spec_of(name: String, fact: &TypedFact) -> Result<TensorSpec, ServingError> {
    Ok(TensorSpec {
        name,
        element: element_of(fact.datum_type)?,
        shape: fact.shape.iter().map(|dim| dim.to_usize().ok()).collect(),
    })
}

fn invalid(error: impl std::fmt::Display) -> ServingError {
    ServingError::Invalid(format!("the ONNX model cannot be compiled: {error:#}"))
}

impl OnnxModel {
    /// Reads, checks and compiles an ONNX model.
    pub fn load(bytes: &[u8]) -> Result<Self, ServingError> {
        let sha256 = hex::encode(Sha256::digest(bytes));
        let onnx = tract_onnx::onnx();
        let mut proto = onnx
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|error| ServingError::Invalid(format!("not an ONNX model: {error:#}")))?;
        let graph = proto
            .graph
            .as_mut()
            .ok_or_else(|| ServingError::Invalid("the ONNX model has no graph".into()))?;
        if let Some((node, outputs)) = tree_graph(graph) {
            let input = graph
                .input
                .first()
                .ok_or_else(|| ServingError::Invalid("the ONNX model has no input".into()))?;
            let features = feature_count(input)?;
            let model = trees::TreeModel::from_node(&node, features)?;
            let width = model.output_width();
            let specs = outputs
                .iter()
                .map(|(name, index)| match (model.is_classifier(), index) {
                    (true, 0) => TensorSpec {
                        name: name.clone(),
                        element: ElementType::I64,
                        shape: vec![None],
                    },
                    _ => TensorSpec {
                        name: name.clone(),
                        element: ElementType::F32,
                        shape: vec![None, Some(width)],
                    },
                })
                .collect();
            return Ok(Self {
                backend: Backend::Trees(Arc::new(model), outputs),
                input: TensorSpec {
                    name: input.name.clone(),
                    element: ElementType::F32,
                    shape: vec![None, Some(features)],
                },
                outputs: specs,
                sha256,
                tree_labels: None,
            });
        }
        rewrite(graph)?;
        let tree_labels = graph
            .node
            .iter()
            .find(|node| node.domain == ML_DOMAIN && node.op_type == "TreeEnsembleClassifier")
            .map(|node| ints(node, "classlabels_int64s"))
            .filter(|labels| !labels.is_empty());
        let initializers: Vec<&str> =
            graph.initializer.iter().map(|tensor| tensor.name.as_str()).collect();
        let inputs: Vec<&pb::ValueInfoProto> = graph
            .input
            .iter()
            .filter(|input| !initializers.contains(&input.name.as_str()))
            .collect();
        let [input] = inputs.as_slice() else {
            return Err(ServingError::Unsupported(format!(
                "the model has {} inputs; Cairn's in-process runtime serves models with one [rows, features] input (export with a single input)",
                inputs.len()
            )));
        };
        let input_name = input.name.clone();
        let features = feature_count(input)?;
        let mut model = onnx.model_for_proto_model(&proto).map_err(invalid)?;
        let rows = model.sym("rows");
        model
            .set_input_fact(0, f32::fact(&[rows.to_dim(), features.to_dim()]).into())
            .map_err(invalid)?;
        let typed = model.into_optimized().map_err(invalid)?;
        let outputs = typed
            .output_outlets()
            .map_err(invalid)?
            .iter()
            .map(|outlet| {
                let name = typed.node(outlet.node).name.clone();
                let label = typed.outlet_label(*outlet).map(str::to_string).unwrap_or(name);
                let fact = typed.outlet_fact(*outlet).map_err(invalid)?;
                spec_of(label, fact)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let plan = typed.into_runnable().map_err(invalid)?;
        let input = TensorSpec {
            name: input_name,
            element: ElementType::F32,
            shape: vec![None, Some(features)],
        };
        Ok(Self { backend: Backend::Tract(plan), input, outputs, sha256, tree_labels })
    }

    /// The input.
    pub fn input(&self) -> &TensorSpec {
        &self.input
    }

    /// The outputs.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// The number of features a row has.
    pub fn features(&self) -> usize {
        self.input.shape[1].unwrap_or(0)
    }

    /// The sha256 of the model file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Runs a batch: `data` holds `rows × features` values, row-major.
    pub fn predict(&self, rows: usize, data: Vec<f32>) -> Result<Vec<Output>, ServingError> {
        let features = self.features();
        if rows == 0 {
            return Err(ServingError::BadInput("no rows to predict".into()));
        }
        if data.len() != rows * features {
            return Err(ServingError::BadInput(format!(
                "expected {features} features per row, got {} values for {rows} rows",
                data.len()
            )));
        }
        let plan = match &self.backend {
            Backend::Tract(plan) => plan,
            Backend::Trees(model, outputs) => {
                let (labels, scores, width) = model.predict(rows, &data);
                return Ok(outputs
                    .iter()
                    .zip(&self.outputs)
                    .map(|((name, index), spec)| match (&labels, index) {
                        (Some(labels), 0) => Output {
                            name: name.clone(),
                            shape: vec![rows],
                            element: spec.element,
                            values: Values::I64(labels.clone()),
                        },
                        _ => Output {
                            name: name.clone(),
                            shape: vec![rows, width],
                            element: spec.element,
                            values: Values::F64(scores.iter().map(|v| f64::from(*v)).collect()),
                        },
                    })
                    .collect());
            }
        };
        let tensor = tract_ndarray::Array2::from_shape_vec((rows, features), data)
            .map_err(|error| ServingError::BadInput(error.to_string()))?;
        let results = plan
            .run(tvec!(Tensor::from(tensor).into()))
            .map_err(|error| ServingError::Inference(format!("{error:#}")))?;
        results
            .into_iter()
            .zip(&self.outputs)
            .map(|(value, spec)| {
                let tensor = value.into_tensor();
                let shape = tensor.shape().to_vec();
                let values = match tensor.datum_type() {
                    DatumType::F32 => Values::F64(
                        tensor
                            .try_as_plain_ram()
                            .map_err(inference)?
                            .as_slice::<f32>()
                            .map_err(inference)?
                            .iter()
                            .map(|v| f64::from(*v))
                            .collect(),
                    ),
                    DatumType::F64 => Values::F64(
                        tensor
                            .try_as_plain_ram()
                            .map_err(inference)?
                            .as_slice::<f64>()
                            .map_err(inference)?
                            .to_vec(),
                    ),
                    DatumType::I64 => Values::I64(
                        tensor
                            .try_as_plain_ram()
                            .map_err(inference)?
                            .as_slice::<i64>()
                            .map_err(inference)?
                            .to_vec(),
                    ),
                    DatumType::I32 => Values::I64(
                        tensor
                            .try_as_plain_ram()
                            .map_err(inference)?
                            .as_slice::<i32>()
                            .map_err(inference)?
                            .iter()
                            .map(|v| i64::from(*v))
                            .collect(),
                    ),
                    DatumType::Bool => Values::Bool(
                        tensor
                            .try_as_plain_ram()
                            .map_err(inference)?
                            .as_slice::<bool>()
                            .map_err(inference)?
                            .to_vec(),
                    ),
                    DatumType::String => Values::Str(
                        tensor
                            .try_as_plain_ram()
                            .map_err(inference)?
                            .as_slice::<String>()
                            .map_err(inference)?
                            .to_vec(),
                    ),
                    other => {
                        return Err(ServingError::Inference(format!(
                            "unexpected output type {other:?}"
                        )));
                    }
                };
                Ok(Output { name: spec.name.clone(), shape, element: spec.element, values })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|mut outputs| {
                self.relabel(&mut outputs);
                outputs
            })
    }

    fn relabel(&self, outputs: &mut [Output]) {
        let Some(classes) = &self.tree_labels else { return };
        let probabilities = outputs.iter().find_map(|output| match &output.values {
            Values::F64(values) if output.shape.len() == 2 && output.shape[1] == classes.len() => {
                Some(values.clone())
            }
            _ => None,
        });
        let Some(probabilities) = probabilities else { return };
        for output in outputs.iter_mut() {
            if let Values::I64(labels) = &mut output.values
                && output.shape.len() == 1
            {
                for (label, row) in labels.iter_mut().zip(probabilities.chunks(classes.len())) {
                    let best = row.iter().enumerate().fold(0, |best, (index, value)| {
                        if *value > row[best] { index } else { best }
                    });
                    *label = classes[best];
                }
            }
        }
    }
}

fn inference(error: impl std::fmt::Display) -> ServingError {
    ServingError::Inference(error.to_string())
}

/// The feature count of a `[rows, features]` input.
fn feature_count(input: &pb::ValueInfoProto) -> Result<usize, ServingError> {
    let shape =
        input.r#type.as_ref().and_then(|t| t.value.as_ref()).and_then(|value| match value {
            pb::type_proto::Value::TensorType(tensor) => tensor.shape.as_ref(),
        });
    let dims: Vec<Option<i64>> = shape
        .map(|shape| {
            shape
                .dim
                .iter()
                .map(|dim| match &dim.value {
                    Some(pb::tensor_shape_proto::dimension::Value::DimValue(value)) => Some(*value),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match dims.as_slice() {
        [_, Some(features)] if *features > 0 => Ok(*features as usize),
        _ => Err(ServingError::Unsupported(format!(
            "input '{}' must be a [rows, features] tensor with a fixed feature count",
            input.name
        ))),
    }
}
