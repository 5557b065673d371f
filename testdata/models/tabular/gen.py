#!/usr/bin/python3
"""Writes the ai.onnx.ml fixtures of servekit's tabular tests.

Each model is built with onnx.helper in the exact shape that skl2onnx
(scikit-learn) or onnxmltools (XGBoost, LightGBM) emits for the estimator it
names: the same operators, attributes, input and output names, types and
opsets, with small random weights. cases.json lists every model with the
inputs the tests feed it; the tests compare servekit's answers with ONNX
Runtime's own, so no expected output is stored here.

Run with Debian's python3-onnx (apt-get install python3-onnx):

    /usr/bin/python3 testdata/models/tabular/gen.py

The output is deterministic: rerunning it must leave git clean.
"""

import json
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
FLOAT, DOUBLE, INT64, STRING = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.STRING
ML = "ai.onnx.ml"
CASES = []


def rng(seed):
    return np.random.default_rng(seed)


def floats(a):
    return [float(np.float32(v)) for v in np.asarray(a).ravel()]


def tensor(name, elem, dims):
    return helper.make_tensor_value_info(name, elem, dims)


def map_type(key, value):
    # onnx 1.12's helper has no make_map_type_proto.
    t = onnx.TypeProto()
    t.map_type.key_type = key
    t.map_type.value_type.CopyFrom(value)
    return t


def seq_map(name, key):
    return helper.make_value_info(
        name, helper.make_sequence_type_proto(map_type(key, helper.make_tensor_type_proto(FLOAT, None))))


def save(name, mimics, nodes, inputs, outputs, feed, initializers=(), opset=15, ml=1, producer="skl2onnx"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset)]
    if ml:
        opsets.append(helper.make_opsetid(ML, ml))
    model = helper.make_model(graph, opset_imports=opsets, producer_name=producer, producer_version="servekit-fixture",
                              doc_string="servekit fixture: " + mimics)
    model.ir_version = 8
    onnx.checker.check_model(model)
    with open(os.path.join(HERE, name + ".onnx"), "wb") as f:
        f.write(model.SerializeToString())
    CASES.append({"name": name, "mimics": mimics, "inputs": feed})


def feed(name, datatype, shape, data):
    out = []
    for v in np.asarray(data, dtype=object).ravel():
        if isinstance(v, float) and math.isnan(v):
            out.append("NaN")
        elif isinstance(v, (float, np.floating)):
            out.append(float(np.float32(v)))
        elif isinstance(v, (int, np.integer)):
            out.append(int(v))
        else:
            out.append(str(v))
    return {"name": name, "datatype": datatype, "shape": list(shape), "data": out}


def features(seed, n, f, nan=False):
    x = rng(seed).normal(size=(n, f)).astype(np.float32)
    x = [[float(v) for v in row] for row in x]
    if nan:
        x[1][0] = float("nan")
        x[3][2] = float("nan")
    return x


# --- linear models -----------------------------------------------------------

def linear_classifier(seed, f, labels, post, multi_class=0, binary=False):
    r = rng(seed)
    c = 1 if binary else len(labels)
    coef = r.normal(size=(c, f)).astype(np.float32)
    icpt = r.normal(size=c).astype(np.float32)
    if binary:  # skl2onnx writes both rows of a binary model: -w and w
        coef, icpt = np.vstack([-coef, coef]), np.concatenate([-icpt, icpt])
    attrs = dict(coefficients=floats(coef), intercepts=floats(icpt), post_transform=post, multi_class=multi_class)
    if isinstance(labels[0], str):
        attrs["classlabels_strings"] = labels
    else:
        attrs["classlabels_ints"] = labels
    return attrs


def label_out(labels, src="label", name="output_label"):
    if isinstance(labels[0], str):
        return helper.make_node("Identity", [src], [name]), tensor(name, STRING, [None])
    return helper.make_node("Cast", [src], [name], to=INT64), tensor(name, INT64, [None])


def zipmap(labels, src="probabilities", name="output_probability"):
    key = STRING if isinstance(labels[0], str) else INT64
    attr = {"classlabels_strings": labels} if key == STRING else {"classlabels_int64s": labels}
    return helper.make_node("ZipMap", [src], [name], domain=ML, **attr), seq_map(name, key)


def gen_linear():
    # The model: LinearClassifier with string labels, both outputs raw.
    labels = ["legit", "fraud"]
    save("linear_str", "a LinearClassifier with classlabels_strings, outputs as the operator gives them",
         [helper.make_node("LinearClassifier", ["input"], ["label", "probabilities"], domain=ML,
                           **linear_classifier(1, 3, labels, "LOGISTIC", multi_class=1, binary=True))],
         [tensor("input", FLOAT, [None, 3])],
         [tensor("label", STRING, [None]), tensor("probabilities", FLOAT, [None, 2])],
         [feed("input", "FP32", [6, 3], features(11, 6, 3))])

    # skl2onnx LogisticRegression, binary, integer labels, default options.
    for name, zm in (("logreg_int_zipmap", True), ("logreg_int_nozipmap", False)):
        labels = [0, 1]
        lab, lab_vi = label_out(labels)
        nodes = [helper.make_node("LinearClassifier", ["float_input"], ["label", "probability_tensor"], domain=ML,
                                  **linear_classifier(2, 4, labels, "LOGISTIC", binary=True)),
                 helper.make_node("Normalizer", ["probability_tensor"], ["probabilities"], domain=ML, norm="L1"),
                 lab]
        if zm:
            z, z_vi = zipmap(labels)
        else:
            z, z_vi = helper.make_node("Identity", ["probabilities"], ["output_probability"]), tensor("output_probability", FLOAT, [None, 2])
        save(name, "skl2onnx LogisticRegression, binary, integer classes" + ("" if zm else ", options={'zipmap': False}"),
             nodes + [z], [tensor("float_input", FLOAT, [None, 4])], [lab_vi, z_vi],
             [feed("float_input", "FP32", [7, 4], features(12, 7, 4))])

    # skl2onnx LogisticRegression(multi_class='multinomial'), string classes.
    labels = ["bronze", "gold", "silver"]
    lab, lab_vi = label_out(labels)
    z, z_vi = zipmap(labels)
    save("logreg_str_zipmap", "skl2onnx LogisticRegression, multinomial, string classes",
         [helper.make_node("LinearClassifier", ["float_input"], ["label", "probabilities"], domain=ML,
                           **linear_classifier(3, 4, labels, "SOFTMAX")), lab, z],
         [tensor("float_input", FLOAT, [None, 4])], [lab_vi, z_vi],
         [feed("float_input", "FP32", [7, 4], features(13, 7, 4))])

    r = rng(4)
    save("linear_reg", "skl2onnx LinearRegression",
         [helper.make_node("LinearRegressor", ["float_input"], ["variable"], domain=ML,
                           coefficients=floats(r.normal(size=5)), intercepts=floats(r.normal(size=1)))],
         [tensor("float_input", FLOAT, [None, 5])], [tensor("variable", FLOAT, [None, 1])],
         [feed("float_input", "FP32", [5, 5], features(14, 5, 5))])


# --- tree ensembles ----------------------------------------------------------

def trees(seed, n_trees, f, depth):
    """Full binary trees as TreeEnsemble node attributes plus their leaves."""
    r = rng(seed)
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                         "nodes_hitrates")}
    leaves = []
    for t in range(n_trees):
        n_nodes = 2 ** (depth + 1) - 1
        for i in range(n_nodes):
            leaf = i >= 2 ** depth - 1
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(i)
            a["nodes_featureids"].append(0 if leaf else int(r.integers(f)))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_values"].append(0.0 if leaf else float(np.float32(r.normal())))
            a["nodes_truenodeids"].append(0 if leaf else 2 * i + 1)
            a["nodes_falsenodeids"].append(0 if leaf else 2 * i + 2)
            a["nodes_missing_value_tracks_true"].append(0)
            a["nodes_hitrates"].append(1.0)
            if leaf:
                leaves.append((t, i))
    return a, leaves, r


def tree_classifier(seed, n_trees, f, labels, post="NONE", binary_one_weight=False, base_values=None):
    a, leaves, r = trees(seed, n_trees, f, 2)
    a.update(class_treeids=[], class_nodeids=[], class_ids=[], class_weights=[], post_transform=post)
    for t, i in leaves:
        classes = [1] if binary_one_weight else range(len(labels))
        w = r.dirichlet(np.ones(len(labels))) / n_trees
        for c in classes:
            a["class_treeids"].append(t)
            a["class_nodeids"].append(i)
            a["class_ids"].append(c)
            a["class_weights"].append(float(np.float32(r.normal() if binary_one_weight else w[c])))
    if base_values is not None:
        a["base_values"] = base_values
    if isinstance(labels[0], str):
        a["classlabels_strings"] = labels
    else:
        a["classlabels_int64s"] = labels
    return a


def tree_regressor(seed, n_trees, f, aggregate, base_values=None):
    a, leaves, r = trees(seed, n_trees, f, 3)
    a.update(target_treeids=[], target_nodeids=[], target_ids=[], target_weights=[], n_targets=1,
             aggregate_function=aggregate, post_transform="NONE")
    for t, i in leaves:
        a["target_treeids"].append(t)
        a["target_nodeids"].append(i)
        a["target_ids"].append(0)
        a["target_weights"].append(float(np.float32(r.normal())))
    if base_values is not None:
        a["base_values"] = base_values
    return a


def gen_trees():
    # skl2onnx RandomForestClassifier, three integer classes, ZipMap.
    labels = [0, 1, 2]
    lab, lab_vi = label_out(labels)
    z, z_vi = zipmap(labels)
    save("rf_int_zipmap", "skl2onnx RandomForestClassifier, multiclass, integer classes",
         [helper.make_node("TreeEnsembleClassifier", ["float_input"], ["label", "probabilities"], domain=ML,
                           **tree_classifier(21, 3, 4, labels)), lab, z],
         [tensor("float_input", FLOAT, [None, 4])], [lab_vi, z_vi],
         [feed("float_input", "FP32", [8, 4], features(22, 8, 4))], ml=3)

    # skl2onnx DecisionTreeClassifier, binary, string classes, ZipMap.
    labels = ["no", "yes"]
    lab, lab_vi = label_out(labels)
    z, z_vi = zipmap(labels)
    save("tree_str_zipmap", "skl2onnx DecisionTreeClassifier, binary, string classes",
         [helper.make_node("TreeEnsembleClassifier", ["float_input"], ["label", "probabilities"], domain=ML,
                           **tree_classifier(23, 1, 3, labels)), lab, z],
         [tensor("float_input", FLOAT, [None, 3])], [lab_vi, z_vi],
         [feed("float_input", "FP32", [6, 3], features(24, 6, 3))], ml=3)

    # onnxmltools XGBClassifier, binary: one weight per leaf, LOGISTIC, no ZipMap.
    save("xgb_binary", "onnxmltools convert_xgboost(XGBClassifier), binary",
         [helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain=ML,
                           **tree_classifier(25, 4, 5, [0, 1], post="LOGISTIC", binary_one_weight=True, base_values=[0.0]))],
         [tensor("input", FLOAT, [None, 5])], [tensor("label", INT64, [None]), tensor("probabilities", FLOAT, [None, 2])],
         [feed("input", "FP32", [6, 5], features(26, 6, 5))], ml=1, producer="OnnxMLTools")

    # onnxmltools LightGBM LGBMClassifier, multiclass: SOFTMAX trees, ZipMap.
    labels = [0, 1, 2, 3]
    z, z_vi = zipmap(labels)
    save("lgbm_multi_zipmap", "onnxmltools convert_lightgbm(LGBMClassifier), multiclass, default zipmap",
         [helper.make_node("TreeEnsembleClassifier", ["input"], ["label", "probabilities"], domain=ML,
                           **tree_classifier(27, 8, 6, labels, post="SOFTMAX")), z],
         [tensor("input", FLOAT, [None, 6])], [tensor("label", INT64, [None]), z_vi],
         [feed("input", "FP32", [7, 6], features(28, 7, 6))], ml=1, producer="OnnxMLTools")

    save("rf_reg", "skl2onnx RandomForestRegressor",
         [helper.make_node("TreeEnsembleRegressor", ["float_input"], ["variable"], domain=ML,
                           **tree_regressor(29, 3, 4, "AVERAGE"))],
         [tensor("float_input", FLOAT, [None, 4])], [tensor("variable", FLOAT, [None, 1])],
         [feed("float_input", "FP32", [6, 4], features(30, 6, 4))], ml=3)

    save("xgb_reg", "onnxmltools convert_xgboost(XGBRegressor)",
         [helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain=ML,
                           **tree_regressor(31, 5, 4, "SUM", base_values=[0.5]))],
         [tensor("input", FLOAT, [None, 4])], [tensor("variable", FLOAT, [None, 1])],
         [feed("input", "FP32", [6, 4], features(32, 6, 4))], ml=1, producer="OnnxMLTools")


# --- SVM -------------------------------------------------------------------

def gen_svm():
    # skl2onnx SVC(probability=True), three string classes, ovo with Platt scaling.
    r = rng(41)
    labels = ["cat", "dog", "fox"]
    per_class, f = [2, 3, 2], 3
    n_sv = sum(per_class)
    attrs = dict(kernel_type="RBF", kernel_params=[0.3, 0.0, 3.0], vectors_per_class=per_class,
                 support_vectors=floats(r.normal(size=(n_sv, f))), coefficients=floats(r.normal(size=(len(labels) - 1) * n_sv)),
                 rho=floats(r.normal(size=3)), prob_a=floats(-np.abs(r.normal(size=3)) - 0.5), prob_b=floats(r.normal(size=3) * 0.1),
                 classlabels_strings=labels, post_transform="NONE")
    lab, lab_vi = label_out(labels)
    z, z_vi = zipmap(labels)
    save("svm_str_zipmap", "skl2onnx SVC(probability=True), multiclass, string classes",
         [helper.make_node("SVMClassifier", ["float_input"], ["label", "probabilities"], domain=ML, **attrs), lab, z],
         [tensor("float_input", FLOAT, [None, f])], [lab_vi, z_vi],
         [feed("float_input", "FP32", [6, f], features(42, 6, f))])


# --- preprocessing ---------------------------------------------------------

def gen_preprocessing():
    # skl2onnx Pipeline(SimpleImputer, StandardScaler, LogisticRegression).
    r = rng(51)
    labels = [0, 1]
    lab, lab_vi = label_out(labels)
    z, z_vi = zipmap(labels)
    save("pipeline_imputer_scaler", "skl2onnx Pipeline(SimpleImputer, StandardScaler, LogisticRegression)",
         [helper.make_node("Imputer", ["float_input"], ["variable"], domain=ML,
                           imputed_value_floats=floats(r.normal(size=4)), replaced_value_float=float("nan")),
          helper.make_node("Scaler", ["variable"], ["variable1"], domain=ML,
                           offset=floats(r.normal(size=4)), scale=floats(np.abs(r.normal(size=4)) + 0.5)),
          helper.make_node("LinearClassifier", ["variable1"], ["label", "probability_tensor"], domain=ML,
                           **linear_classifier(52, 4, labels, "LOGISTIC", binary=True)),
          helper.make_node("Normalizer", ["probability_tensor"], ["probabilities"], domain=ML, norm="L1"),
          lab, z],
         [tensor("float_input", FLOAT, [None, 4])], [lab_vi, z_vi],
         [feed("float_input", "FP32", [6, 4], features(53, 6, 4, nan=True))])

    # skl2onnx Normalizer(norm='max') and Binarizer, one output each.
    save("normalizer_binarizer", "skl2onnx Normalizer(norm='max') and Binarizer(threshold=0.2) on the same input",
         [helper.make_node("Normalizer", ["float_input"], ["normalized"], domain=ML, norm="MAX"),
          helper.make_node("Binarizer", ["float_input"], ["binarized"], domain=ML, threshold=0.2)],
         [tensor("float_input", FLOAT, [None, 4])],
         [tensor("normalized", FLOAT, [None, 4]), tensor("binarized", FLOAT, [None, 4])],
         [feed("float_input", "FP32", [5, 4], features(54, 5, 4))])

    # skl2onnx OneHotEncoder(handle_unknown='ignore') over a string and an integer column.
    colors, sizes = ["blue", "green", "red"], [1, 2, 5, 10]
    k = len(colors) + len(sizes)
    save("onehot", "skl2onnx OneHotEncoder(handle_unknown='ignore') over a string and an int64 column",
         [helper.make_node("OneHotEncoder", ["color"], ["color_oh"], domain=ML, cats_strings=colors, zeros=1),
          helper.make_node("OneHotEncoder", ["size"], ["size_oh"], domain=ML, cats_int64s=sizes, zeros=1),
          helper.make_node("Concat", ["color_oh", "size_oh"], ["concat"], axis=2),
          helper.make_node("Reshape", ["concat", "shape"], ["variable"])],
         [tensor("color", STRING, [None, 1]), tensor("size", INT64, [None, 1])],
         [tensor("variable", FLOAT, [None, k])],
         [feed("color", "BYTES", [5, 1], [["red"], ["blue"], ["purple"], [""], ["green"]]),
          feed("size", "INT64", [5, 1], [[10], [1], [3], [2], [5]])],
         initializers=[helper.make_tensor("shape", INT64, [2], [-1, k])])

    # skl2onnx LabelEncoder in both directions (ai.onnx.ml opset 2).
    save("label_encoder", "skl2onnx LabelEncoder, string to int64 and int64 to string",
         [helper.make_node("LabelEncoder", ["text"], ["code"], domain=ML,
                           keys_strings=["high", "low", "medium"], values_int64s=[0, 1, 2], default_int64=-1),
          helper.make_node("LabelEncoder", ["code_in"], ["text_out"], domain=ML,
                           keys_int64s=[0, 1, 2], values_strings=["high", "low", "medium"], default_string="_Unused")],
         [tensor("text", STRING, [None]), tensor("code_in", INT64, [None])],
         [tensor("code", INT64, [None]), tensor("text_out", STRING, [None])],
         [feed("text", "BYTES", [5], ["low", "high", "unknown", "medium", "ÉLEVÉ"]),
          feed("code_in", "INT64", [5], [2, 0, 7, 1, -3])], ml=2)

    save("category_mapper", "CategoryMapper (skl2onnx's older string-to-int encoding), both directions",
         [helper.make_node("CategoryMapper", ["city"], ["city_id"], domain=ML,
                           cats_strings=["lyon", "nantes", "paris"], cats_int64s=[10, 20, 30], default_int64=-1),
          helper.make_node("CategoryMapper", ["city_id_in"], ["city_out"], domain=ML,
                           cats_strings=["lyon", "nantes", "paris"], cats_int64s=[10, 20, 30], default_string="?")],
         [tensor("city", STRING, [None, 1]), tensor("city_id_in", INT64, [None, 1])],
         [tensor("city_id", INT64, [None, 1]), tensor("city_out", STRING, [None, 1])],
         [feed("city", "BYTES", [4, 1], [["paris"], ["rome"], ["lyon"], ["nantes"]]),
          feed("city_id_in", "INT64", [4, 1], [[20], [30], [0], [10]])])

    save("array_feature_extractor", "ArrayFeatureExtractor over numbers and strings (skl2onnx column selection)",
         [helper.make_node("ArrayFeatureExtractor", ["x", "idx"], ["picked"], domain=ML),
          helper.make_node("ArrayFeatureExtractor", ["s", "idx"], ["picked_s"], domain=ML)],
         [tensor("x", FLOAT, [None, 5]), tensor("s", STRING, [None, 5])],
         [tensor("picked", FLOAT, [None, 2]), tensor("picked_s", STRING, [None, 2])],
         [feed("x", "FP32", [3, 5], features(55, 3, 5)),
          feed("s", "BYTES", [3, 5], [[c + str(i) for c in "abcde"] for i in range(3)])],
         initializers=[helper.make_tensor("idx", INT64, [2], [4, 1])])


# --- per-column pipeline: the loan-risk model ------------------------------

def gen_columns():
    """skl2onnx Pipeline(ColumnTransformer([...]), LogisticRegression) from a
    DataFrame: one [None, 1] input per column, as convert_sklearn's
    guess of a DataFrame's columns gives them."""
    purposes = ["car", "education", "home", "business"]
    labels = ["high", "low"]
    n_num, k = 3, len(purposes)
    lab, lab_vi = label_out(labels)
    z, z_vi = zipmap(labels)
    loan_w = [0.3, 0.8, -0.9, -0.6, 0.2, 0.5, -0.3]
    nodes = [
        helper.make_node("Cast", ["n_loans"], ["n_loans_f"], to=FLOAT),
        helper.make_node("Concat", ["age", "income", "n_loans_f"], ["num"], axis=1),
        helper.make_node("Imputer", ["num"], ["num_imp"], domain=ML,
                         imputed_value_floats=[40.0, 35000.0, 1.0], replaced_value_float=float("nan")),
        helper.make_node("Scaler", ["num_imp"], ["num_scaled"], domain=ML,
                         offset=[40.0, 35000.0, 1.0], scale=[0.1, 0.0001, 0.5]),
        helper.make_node("OneHotEncoder", ["purpose"], ["purpose_oh"], domain=ML, cats_strings=purposes, zeros=1),
        helper.make_node("Reshape", ["purpose_oh", "oh_shape"], ["purpose_2d"]),
        helper.make_node("Concat", ["num_scaled", "purpose_2d"], ["transformed"], axis=1),
        # Weights a credit analyst would recognise (columns: age, income,
        # n_loans scaled, then one-hot car, education, home, business):
        # older, richer, fewer loans and a home purpose mean low risk.
        helper.make_node("LinearClassifier", ["transformed"], ["label", "probability_tensor"], domain=ML,
                         coefficients=floats([-w for w in loan_w] + loan_w), intercepts=[-0.4, 0.4],
                         classlabels_strings=labels, post_transform="LOGISTIC", multi_class=0),
        helper.make_node("Normalizer", ["probability_tensor"], ["probabilities"], domain=ML, norm="L1"),
        lab, z]
    ages = [[35.0], [float("nan")], [62.0], [23.0], [47.0], [51.0]]
    incomes = [[42000.0], [18000.0], [95000.0], [12000.0], [float("nan")], [30000.0]]
    loans = [[1], [3], [0], [4], [2], [0]]
    purpose = [["car"], ["home"], ["business"], ["vacation"], ["education"], [""]]
    save("loan_columns", "skl2onnx Pipeline(ColumnTransformer(SimpleImputer+StandardScaler, OneHotEncoder), LogisticRegression) over DataFrame columns",
         nodes,
         [tensor("age", FLOAT, [None, 1]), tensor("income", FLOAT, [None, 1]),
          tensor("n_loans", INT64, [None, 1]), tensor("purpose", STRING, [None, 1])],
         [lab_vi, z_vi],
         [feed("age", "FP32", [6, 1], ages), feed("income", "FP32", [6, 1], incomes),
          feed("n_loans", "INT64", [6, 1], loans), feed("purpose", "BYTES", [6, 1], purpose)],
         initializers=[helper.make_tensor("oh_shape", INT64, [2], [-1, k])])


# --- every output datatype from an operator, beside a string output ---------

def gen_dtypes():
    casts = [("bool", TensorProto.BOOL), ("uint8", TensorProto.UINT8), ("uint16", TensorProto.UINT16),
             ("uint32", TensorProto.UINT32), ("uint64", TensorProto.UINT64), ("int8", TensorProto.INT8),
             ("int16", TensorProto.INT16), ("int32", TensorProto.INT32), ("int64", INT64),
             ("fp16", TensorProto.FLOAT16), ("bf16", TensorProto.BFLOAT16), ("fp64", DOUBLE), ("str", STRING)]
    labels = ["legit", "fraud"]
    nodes = [helper.make_node("Abs", ["x"], ["ax"]), helper.make_node("Mul", ["ax", "ten"], ["big"])]
    outs = []
    for name, t in casts:
        nodes.append(helper.make_node("Cast", ["big"], ["as_" + name], to=t))
        outs.append(tensor("as_" + name, t, [None, 3]))
    nodes.append(helper.make_node("LinearClassifier", ["x"], ["label", "scores"], domain=ML,
                                  **linear_classifier(71, 3, labels, "NONE", multi_class=1, binary=True)))
    outs += [tensor("label", STRING, [None]), tensor("scores", FLOAT, [None, 2])]
    save("dtypes", "Cast to every element type and a LinearClassifier's string label in one graph",
         nodes, [tensor("x", FLOAT, [None, 3])], outs,
         [feed("x", "FP32", [4, 3], features(72, 4, 3))],
         initializers=[helper.make_tensor("ten", FLOAT, [], [10.0])], opset=17)


# --- outputs servekit cannot serve as tensors ------------------------------

def gen_unservable():
    seq = helper.make_value_info("parts", helper.make_sequence_type_proto(helper.make_tensor_type_proto(FLOAT, None)))
    opt = helper.make_value_info("maybe", helper.make_optional_type_proto(helper.make_tensor_type_proto(FLOAT, [None, 4])))
    save("unservable_outputs", "a plain tensor beside a sequence of tensors and an optional: the last two cannot be served",
         [helper.make_node("Relu", ["x"], ["y"]),
          helper.make_node("SplitToSequence", ["x"], ["parts"], axis=1),
          helper.make_node("Optional", ["x"], ["maybe"])],
         [tensor("x", FLOAT, [None, 4])], [tensor("y", FLOAT, [None, 4]), seq, opt],
         [feed("x", "FP32", [3, 4], features(81, 3, 4))], ml=0)

    # skl2onnx DictVectorizer takes a map: not a tensor a request can carry.
    m = helper.make_value_info("dict", map_type(STRING, helper.make_tensor_type_proto(FLOAT, None)))
    save("dict_input", "skl2onnx DictVectorizer: its input is a map, which a request cannot carry",
         [helper.make_node("DictVectorizer", ["dict"], ["variable"], domain=ML, string_vocabulary=["a", "b", "c"])],
         [m], [tensor("variable", FLOAT, [None, 3])], [])


gen_linear()
gen_trees()
gen_svm()
gen_preprocessing()
gen_columns()
gen_dtypes()
gen_unservable()
with open(os.path.join(HERE, "cases.json"), "w") as f:
    # One input a line: the file stays short and its diffs readable.
    f.write('{"generator": "testdata/models/tabular/gen.py", "cases": [\n')
    for i, c in enumerate(CASES):
        f.write(' {"name": %s, "mimics": %s, "inputs": [' % (json.dumps(c["name"]), json.dumps(c["mimics"])))
        f.write(",".join("\n  " + json.dumps(x, ensure_ascii=False) for x in c["inputs"]))
        f.write("]}" + ("," if i < len(CASES) - 1 else "") + "\n")
    f.write("]}\n")
