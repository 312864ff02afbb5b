"""The serving signatures of our models: named inputs and named outputs.

Every export has `serving_default`, which maps `token_ids` and `padding_mask`
(int32, `(batch, length)`, both dynamic, length at most the model's
`sequence_length`) to named outputs. A text classifier with a preprocessor
adds `classify_text` (a batch of strings in, class probabilities out), and a
causal LM adds `decode_step` (one token and the fixed-size decoding state
in, next-token logits and the new state out).
"""

import collections

import keras
import keras_hub
import tensorflow as tf
from keras import ops

from keras_linformer.export.errors import ExportError
from keras_linformer.models import LinformerCausalLM

TOKEN_INPUTS = ("token_ids", "padding_mask")

Endpoint = collections.namedtuple("Endpoint", ["name", "fn", "input_signature"])


def serving_endpoints(model, include_text=True):
    """The endpoints to export for `model`, `serving_default` first.

    Args:
        model: a functional Keras model whose inputs are `token_ids` and
            `padding_mask` (our backbones and tasks are).
        include_text: bool. Whether to add the string-input signature of a
            classifier (it needs TensorFlow Text ops, so not in TFLite).

    Raises:
        ExportError: if the model's inputs are not `token_ids` and
            `padding_mask`.
    """
    try:
        input_names = sorted(tensor.name for tensor in model.inputs)
    except (AttributeError, ValueError):
        input_names = None
    if input_names != sorted(TOKEN_INPUTS):
        raise ExportError(
            f"Only functional models with inputs {TOKEN_INPUTS} can be "
            f"exported; {type(model).__name__} has inputs {input_names}."
        )
    endpoints = [
        Endpoint(
            "serving_default",
            _token_function(model),
            [_token_spec(name) for name in TOKEN_INPUTS],
        )
    ]
    if (
        include_text
        and isinstance(model, keras_hub.models.TextClassifier)
        and model.preprocessor is not None
    ):
        endpoints.append(
            Endpoint(
                "classify_text",
                _text_function(model),
                [tf.TensorSpec((None,), tf.string, name="text")],
            )
        )
    if isinstance(model, LinformerCausalLM):
        cache_shape = (None,) + tuple(model.backbone.cache_shape(1)[1:])
        cache_dtype = model.compute_dtype
        endpoints.append(
            Endpoint(
                "decode_step",
                _decode_function(model),
                [
                    tf.TensorSpec((None, 1), tf.int32, name="token_ids"),
                    tf.TensorSpec(cache_shape, cache_dtype, name="cache"),
                    tf.TensorSpec((), tf.int32, name="index"),
                ],
            )
        )
    return endpoints


def _token_spec(name):
    return tf.TensorSpec((None, None), tf.int32, name=name)


def _token_function(model):
    def serve(token_ids, padding_mask):
        inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
        if not isinstance(model.input, dict):
            inputs = [inputs[tensor.name] for tensor in model.inputs]
        return _named_outputs(model, model(inputs, training=False))

    return serve


def _text_function(classifier):
    def classify_text(text):
        inputs = classifier.preprocessor(text)
        outputs = classifier(inputs, training=False)
        return _classifier_outputs(classifier, outputs)

    return classify_text


def _decode_function(causal_lm):
    def decode_step(token_ids, cache, index):
        logits, cache = causal_lm.decode_step(token_ids, cache, index)
        return {"logits": logits, "cache": cache}

    return decode_step


def _named_outputs(model, outputs):
    if isinstance(outputs, dict):
        return outputs
    if isinstance(model, keras_hub.models.TextClassifier):
        return _classifier_outputs(model, outputs)
    if isinstance(model, keras_hub.models.CausalLM):
        return {"logits": outputs}
    if isinstance(model, keras_hub.models.Backbone):
        return {"sequence_output": outputs}
    flat_outputs = keras.tree.flatten(outputs)
    return dict(zip(model.output_names, flat_outputs))


def _classifier_outputs(classifier, outputs):
    """Probabilities, and the logits too when the classifier emits logits."""
    activation = keras.activations.serialize(classifier.activation)
    if activation == "linear":
        return {
            "logits": outputs,
            "probabilities": ops.softmax(ops.cast(outputs, "float32")),
        }
    if activation == "softmax":
        return {"probabilities": outputs}
    return {"scores": outputs}
