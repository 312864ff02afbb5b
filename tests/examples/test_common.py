from keras_linformer.layers.sequence_projection import PROJECTION_KINDS
from tests.testing import import_example


def test_projection_choices_are_the_package_kinds():
    assert import_example("common").PROJECTION_KINDS == PROJECTION_KINDS
