from keras_linformer.layers.sequence_projection import CAUSAL_PROJECTION_KINDS
from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from tests.testing import import_example


def test_projection_choices_are_the_package_kinds():
    common = import_example("common")
    assert common.PROJECTION_KINDS == PROJECTION_KINDS
    assert common.CAUSAL_PROJECTION_KINDS == CAUSAL_PROJECTION_KINDS
