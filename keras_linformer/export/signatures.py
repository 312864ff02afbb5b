"""The serving signatures of our models: named inputs and named outputs.

Every export has `serving_default`. For our backbones and tasks it maps
`token_ids` and `padding_mask` (int32, `(batch, length)`, both dynamic,
length at most the model's `max_sequence_length`) to named outputs; any
other functional model keeps its own input names, dtypes and shapes (batch
dynamic). A causal LM adds `prefill` (prompts and their padding mask in,
each row's next-token logits and decoding state after its prompt out, in one
parallel pass; batch and prompt length dynamic) and `decode_step` (one token
and the fixed-size decoding state in, next-token logits and the new state
out; its scalar `index` continues rows of equal prompt length), and a text
classifier with a preprocessor can add `classify_text` (a batch of strings
in), which needs TensorFlow Text ops wherever it is loaded.

A classifier exported with its class names also outputs `classes`, string
`(batch, num_classes)` aligned with `probabilities` (the layout of
TensorFlow Serving's classification outputs).
"""

import collections

import keras
import keras_hub
import tensorflow as tf
from keras import ops

from keras_linformer.export.errors import ExportError
from keras_linformer.models import LinformerCausalLM

Endpoint = collections.namedtuple("Endpoint", ["name", "fn", "input_signature"])


def serving_endpoints(model, include_text=False, class_names=None):
    """The endpoints to export for `model`, `serving_default` first.

    Args:
        model: a functional Keras model (our backbones and tasks are).
        include_text: bool. Whether to add `classify_text`, the string-input
            signature of a classifier with a preprocessor. Its tokenizer ops
            come from TensorFlow Text, so a SavedModel with it loads only
            where those ops are registered, and TFLite cannot hold it.
        class_names: list of strings or `None`. Names of the classifier's
            output columns, added as the `classes` output.

    Raises:
        ExportError: if the model is not functional, if `include_text` is
            set for a model without a text preprocessor, or if the class
            names do not match the model's output.
    """
    input_names = _input_names(model)
    if class_names is not None:
        _check_class_names(model, class_names)
    endpoints = [
        Endpoint(
            "serving_default",
            _forward_function(model, class_names),
            [
                tf.TensorSpec((None,) + tuple(x.shape[1:]), x.dtype, name=name)
                for name, x in zip(input_names, model.inputs)
            ],
        )
    ]
    if include_text:
        if not (
            isinstance(model, keras_hub.models.TextClassifier)
            and model.preprocessor is not None
        ):
            raise ExportError(
                "The text signature needs a text classifier with a "
                f"preprocessor; {type(model).__name__} has none. Export it "
                "without --with-text (include_text=False)."
            )
        endpoints.append(
            Endpoint(
                "classify_text",
                _text_function(model, class_names),
                [tf.TensorSpec((None,), tf.string, name="text")],
            )
        )
    if isinstance(model, LinformerCausalLM):
        cache_shape = (None,) + tuple(model.backbone.cache_shape(1)[1:])
        cache_dtype = model.compute_dtype
        endpoints.append(
            Endpoint(
                "prefill",
                _prefill_function(model),
                [
                    tf.TensorSpec((None, None), tf.int32, name="token_ids"),
                    tf.TensorSpec((None, None), tf.int32, name="padding_mask"),
                ],
            )
        )
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


def _input_names(model):
    """The names of the model's symbolic inputs, which the signature keeps.

    Our models take `token_ids` and `padding_mask`.
    """
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ExportError(
            f"Only functional models can be exported; {type(model).__name__} "
            "has no symbolic inputs. Build it as `keras.Model(inputs, "
            "outputs)` with `keras.Input` tensors, then save and export it."
        )
    names = [tensor.name for tensor in inputs]
    if len(set(names)) != len(names):
        raise ExportError(
            f"The model's inputs must have distinct names to become signature "
            f"inputs; they are {names}. Name them with "
            "`keras.Input(..., name=...)`."
        )
    return names


def _forward_function(model, class_names):
    # Positional arguments take their signature names from the specs.
    def serve(*inputs):
        by_name = {x.name: tensor for x, tensor in zip(model.inputs, inputs)}
        structure = keras.tree.map_structure(
            lambda x: by_name[x.name], model.input
        )
        outputs = _named_outputs(model, model(structure, training=False))
        return _with_classes(outputs, class_names)

    return serve


def _text_function(classifier, class_names):
    def classify_text(text):
        inputs = classifier.preprocessor(text)
        outputs = classifier(inputs, training=False)
        return _with_classes(
            _classifier_outputs(classifier, outputs), class_names
        )

    return classify_text


def _prefill_function(causal_lm):
    def prefill(token_ids, padding_mask):
        logits, cache = causal_lm.prefill(token_ids, padding_mask)
        # The logits after each row's last prompt token, as decode_step
        # gives them, so the app's decoding loop starts from there.
        last = ops.sum(padding_mask, axis=1) - 1
        logits = ops.take_along_axis(
            logits, ops.reshape(last, (-1, 1, 1)), axis=1
        )
        return {"logits": ops.squeeze(logits, axis=1), "cache": cache}

    return prefill


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


def _check_class_names(model, class_names):
    """Class names need one 2D output with one column per name."""
    outputs = keras.tree.flatten(model.outputs)
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        raise ExportError(
            "Class names apply to a classifier with one (batch, classes) "
            f"output; {type(model).__name__} has outputs "
            f"{[tuple(output.shape) for output in outputs]}."
        )
    num_classes = outputs[0].shape[-1]
    if len(class_names) != num_classes:
        raise ExportError(
            f"{len(class_names)} class names were given for a model with "
            f"{num_classes} classes; give one name per class, in class "
            "index order."
        )


def _with_classes(outputs, class_names):
    """Adds `classes`: every row holds the class names, in column order."""
    if class_names is None:
        return outputs
    scores = keras.tree.flatten(outputs)[0]
    names = tf.constant(class_names, tf.string)
    outputs = dict(outputs)
    outputs["classes"] = tf.tile(names[None], [tf.shape(scores)[0], 1])
    return outputs
