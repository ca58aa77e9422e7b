"""Tests of `tfvae.serving.client`: the signature table and input checks."""

import numpy as np
import pytest

from tfvae.serving import client

_SAMPLE_EXPECTS = "expected inputs: num_samples (int32 scalar), seed (int32"


def test_signatures_table_matches_the_export():
  table = {name: ([(s.name, np.dtype(s.dtype).name, s.rank, s.required)
                   for s in signature.inputs], signature.outputs)
           for name, signature in client.SIGNATURES.items()}
  label = ("label", "int32", 1, False)
  assert table == {
      "reconstruct": ([("x", "float32", 4, True), label], ("images",)),
      "serving_default": ([("x", "float32", 4, True), label], ("images",)),
      "encode": ([("x", "float32", 4, True), label], ("mean", "stddev")),
      "decode": ([("z", "float32", 2, True), label], ("mean",)),
      "sample": ([("num_samples", "int32", 0, True),
                  ("seed", "int32", 0, True), label], ("images",)),
      "log_likelihood": ([("x", "float32", 4, True),
                          ("num_samples", "int32", 0, True), label],
                         ("log_prob",)),
  }


@pytest.mark.parametrize("signature, name", [
    ("reconstruct", "images"), ("serving_default", "images"),
    ("sample", "images"), ("log_likelihood", "log_prob"),
    ("encode", None), ("decode", None)])
def test_single_output_name(signature, name):
  assert client.single_output_name(signature) == name


def test_inputs_for_converts_to_signature_dtypes():
  inputs = client.inputs_for("log_likelihood", x=[[[[0.5]]]], num_samples=3,
                             label=[2])
  assert list(inputs) == ["x", "num_samples", "label"]
  assert inputs["x"].dtype == np.float32 and inputs["x"].shape == (1, 1, 1, 1)
  assert inputs["num_samples"].dtype == np.int32
  assert inputs["num_samples"].shape == ()
  assert inputs["label"].dtype == np.int32


@pytest.mark.parametrize("value", [4, np.int64(4), np.array(4, np.uint8)])
def test_int32_scalars_accept_any_integer(value):
  inputs = client.inputs_for("sample", num_samples=value, seed=-3)
  assert inputs["num_samples"] == 4 and inputs["seed"] == -3


def test_float_inputs_accept_integers_and_doubles():
  inputs = client.inputs_for("decode", z=[[0, 1]])
  np.testing.assert_array_equal(inputs["z"], np.array([[0, 1]], np.float32))
  z = np.array([[0.1, np.nan]], np.float64)
  assert client.inputs_for("decode", z=z)["z"].dtype == np.float32


@pytest.mark.parametrize("signature, inputs, message", [
    ("sample", {"num_samples": 4, "seeds": 1}, "sample: unknown input 'seeds'"),
    ("sample", {"num_samples": 4}, "sample: missing input 'seed'"),
    ("sample", {"num_samples": 4, "seed": 1.0},
     "sample: seed must be an integer (int32), got float64"),
    ("sample", {"num_samples": 4, "seed": np.float32(2)},
     "seed must be an integer (int32), got float32"),
    ("sample", {"num_samples": 4, "seed": True},
     "seed must be an integer (int32), got bool"),
    ("sample", {"num_samples": [4], "seed": 1},
     "num_samples must have rank 0 (scalar), got shape [1]"),
    ("sample", {"num_samples": 0, "seed": 1},
     "num_samples must be in [1, 2147483647], got 0"),
    ("sample", {"num_samples": 4, "seed": 2**31},
     "seed must be in [-2147483648, 2147483647], got 2147483648"),
    ("decode", {"z": np.zeros([2, 3, 1])},
     "decode: z must have rank 2 ([N, latent_dim]), got shape [2, 3, 1]"),
    ("encode", {"x": np.zeros([28, 28, 1])},
     "encode: x must have rank 4 ([N, H, W, C] in [0, 1]) or 2 ([N, D] "
     "vectors), got shape [28, 28, 1]"),
    ("encode", {"x": [[[["a"]]]]}, "encode: x must be numbers (float32)"),
    ("encode", {"x": [[[[0.1]]], [[[0.2, 0.3]]]]}, "encode: x is not an array"),
    ("decode", {"z": np.zeros([2, 2]), "label": [0.5, 1.0]},
     "label must be an integer (int32), got float64"),
    ("decode", {"z": np.zeros([2, 2]), "label": [-1, 0]},
     "label must be in [0, 2147483647], got values in [-1, 0]"),
])
def test_bad_inputs_raise_one_line_value_error(signature, inputs, message):
  with pytest.raises(ValueError) as info:
    client.validate_inputs(signature, inputs)
  text = str(info.value)
  assert message in text
  assert "expected inputs: " in text and "\n" not in text


def test_error_lists_the_expected_inputs():
  with pytest.raises(ValueError, match="seed") as info:
    client.inputs_for("sample", num_samples=4, seed=0.5)
  assert _SAMPLE_EXPECTS in str(info.value)


def test_inputs_must_be_a_dict():
  with pytest.raises(ValueError, match="encode: inputs must be a dict"):
    client.validate_inputs("encode", np.zeros([1, 2, 2, 1]))


def test_unknown_signature_lists_known_ones():
  with pytest.raises(ValueError, match="'generate'.*sample, log_likelihood"):
    client.inputs_for("generate", num_samples=1)


@pytest.mark.parametrize("version, expected", [(3, 3), ("12", 12),
                                               (np.int64(1), 1), (0, 0)])
def test_check_version(version, expected):
  assert client.check_version(version) == expected


@pytest.mark.parametrize("version", [-1, 1.5, "latest", True, "1 "])
def test_check_version_rejects(version):
  with pytest.raises(ValueError, match="non-negative integer"):
    client.check_version(version)


def test_serving_error_is_a_tfvae_error():
  from tfvae import errors  # pylint: disable=g-import-not-at-top
  assert issubclass(client.ServingError, errors.TfvaeError)


def test_vector_models_take_x_as_rows():
  inputs = client.inputs_for("log_likelihood", x=[[1.5, 0.0, 2.0]],
                             num_samples=10)
  assert inputs["x"].dtype == np.float32 and inputs["x"].shape == (1, 3)


def test_rest_single_output_of_vector_models_is_named_x():
  rows = np.zeros([2, 5], np.float32)
  assert list(client.name_vector_outputs({"images": rows})) == ["x"]
  images = np.zeros([2, 4, 4, 1], np.float32)
  assert list(client.name_vector_outputs({"images": images})) == ["images"]
  assert list(client.name_vector_outputs({"mean": rows})) == ["mean"]
